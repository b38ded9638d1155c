/**
 * Turns a failed iptables / nft / ip run into an error that names the cause and
 * the fix, keeping the raw output. The knowledge here is what operators keep
 * rediscovering in istio-init logs.
 */
import { ExitCode, MeshcapError } from '../errors.js';
import { PACKAGE_OF } from './binaries.js';
import type { RunResult } from './system.js';

export interface FailureContext {
  /** What meshcap was doing, e.g. "applying the IPv4 rules with iptables-nft-restore". */
  readonly action: string;
  readonly input?: string;
  readonly lockTimeoutSeconds?: number;
  /** Who can hold the lock at this path, in words (from where this process sees it); read only on a lock timeout. */
  readonly lockHolders?: (path: string) => string;
}

/** The input line a restore error points at ("Error occurred at line: 7", "line 7 failed"). */
export function failingInputLine(stderr: string, input: string | undefined): string | undefined {
  if (!input) return undefined;
  const match = /(?:Error occurred at line: |line )(\d+)(?: failed)?/.exec(stderr);
  if (!match) return undefined;
  const line = input.split('\n')[Number(match[1]) - 1];
  return line === undefined ? undefined : `input line ${match[1]}: ${line}`;
}

/**
 * Failures a concurrent writer can cause; the engine re-reads the state and
 * tries again. The first group is iptables-legacy's wording; iptables-nft
 * names the failed nf_tables operation instead ("RULE_DELETE failed (No such
 * file or directory)": a rule seen at read time was removed by another
 * transaction before this one committed).
 */
export function isConcurrencyConflict(result: RunResult): boolean {
  return (
    /Chain already exists|does not exist|Bad rule \(does a matching rule exist|Couldn't load target `ISTIO_|Too many links|Device or resource busy|No chain\/target\/match by that name|Resource busy/.test(
      result.stderr,
    ) || /\b(RULE_DELETE|RULE_REPLACE|RULE_INSERT|CHAIN_USER_DEL|CHAIN_DEL) failed \(No such file or directory\)|\bCHAIN_USER_ADD failed \(File exists\)/.test(result.stderr)
  );
}

export function toolFailure(result: RunResult, context: FailureContext): MeshcapError {
  const tool = result.file.split('/').pop() ?? result.file;
  const where = failingInputLine(result.stderr, context.input);
  const detail = [result.stderr.trim(), where].filter(Boolean).join('\n');
  const base = tool.replace(/-(legacy|nft)(-save|-restore)?$/, '').replace(/-(save|restore)$/, '');

  if (result.notFound) {
    const pkg = PACKAGE_OF[base] ?? base;
    return new MeshcapError({
      exitCode: ExitCode.Unsupported,
      what: `${context.action}: ${tool} was not found on PATH`,
      why: `the image or host has no ${tool} binary`,
      fix: `install it (Debian/Ubuntu: apt-get install ${pkg}; Alpine: apk add ${pkg}), or use an image that ships it`,
      output: detail,
      run: result,
    });
  }
  const err = result.stderr;
  // iptables-legacy opens its lock file before anything else: the rules are untouched.
  const lockFile = /can't open lock file (\S+): (.+)/.exec(err);
  if (lockFile) {
    const [, path, reason] = lockFile as unknown as [string, string, string];
    const dir = path.slice(0, path.lastIndexOf('/')) || '/';
    const readOnly = /Read-only file system/i.test(reason);
    return new MeshcapError({
      exitCode: ExitCode.Unsupported,
      what: `${context.action}: ${tool} cannot open its lock file ${path} (${reason.trim()})`,
      why: readOnly
        ? `${dir} is read-only (readOnlyRootFilesystem: true without a writable ${dir}), and the legacy backend takes the xtables lock in ${path} before every change`
        : `the legacy backend takes the xtables lock in ${path} before every change, and this process cannot create or open it`,
      fix:
        `mount an emptyDir on ${dir} (volumes: [{name: xtables-lock, emptyDir: {}}], volumeMounts: [{name: xtables-lock, mountPath: ${dir}}]), ` +
        'or set XTABLES_LOCKFILE to a file on a writable mount (e.g. XTABLES_LOCKFILE=/tmp/xtables.lock with an emptyDir on /tmp), ' +
        'or use --backend=nft where the node uses nf_tables (it takes no lock); nothing was changed',
      output: detail,
      run: result,
    });
  }
  if (/Permission denied \(you must be root\)|Operation not permitted|you must be root/i.test(err)) {
    return new MeshcapError({
      exitCode: ExitCode.Permission,
      what: `${context.action}: permission denied`,
      why: 'the process is not root or lacks CAP_NET_ADMIN / CAP_NET_RAW in this network namespace',
      fix: 'run as uid 0 with securityContext.capabilities.add [NET_ADMIN, NET_RAW] (what istio-init uses)',
      output: detail,
      run: result,
    });
  }
  if (/holding the xtables lock|Can't lock \S+:|Resource temporarily unavailable.*lock/i.test(err)) {
    const path = /Can't lock (\S+):/.exec(err)?.[1] ?? '/run/xtables.lock';
    return new MeshcapError({
      exitCode: ExitCode.LockTimeout,
      what: `${context.action}: the xtables lock was not obtained within ${context.lockTimeoutSeconds ?? '?'}s`,
      why: context.lockHolders?.(path) ?? `another process held ${path} the whole time`,
      fix: `retry, raise --lock-timeout, or find the holder (fuser -v ${path}, where that process is visible); the nft backend needs no lock`,
      output: detail,
      run: result,
    });
  }
  const table = /can't initialize iptables table `(\w+)'|unable to initialize table '(\w+)'|Table does not exist.*?(\w+)/i.exec(err);
  if (table) {
    const name = table[1] ?? table[2] ?? table[3] ?? 'nat';
    const v6 = tool.startsWith('ip6');
    return new MeshcapError({
      exitCode: ExitCode.Unsupported,
      what: `${context.action}: the kernel has no '${name}' table for this backend`,
      why: `the ${v6 ? 'ip6table' : 'iptable'}_${name} module is not loaded (and cannot be loaded from a container), or this backend does not match the node's`,
      fix: `on the node: modprobe ${v6 ? 'ip6table' : 'iptable'}_${name} (or run meshcap's node-prep DaemonSet); or pin the other backend with --backend=${/legacy/.test(tool) ? 'nft' : 'legacy'}`,
      output: detail,
      run: result,
      otherBackendMayWork: true,
    });
  }
  const extension = /Couldn't load (match|target) `([^']+)'|Extension (\S+) revision \d+ not supported|unknown option "--(\S+)"/.exec(err);
  if (extension && !/`ISTIO_/.test(err)) {
    const name = extension[2] ?? extension[3] ?? extension[4] ?? 'unknown';
    const kind = extension[1] ?? 'extension';
    return new MeshcapError({
      exitCode: ExitCode.Unsupported,
      what: `${context.action}: the kernel cannot load the '${name}' ${kind}`,
      why: `the xt_${name} module (or the nft_compat bridge for it) is missing on the node`,
      fix: `on the node: modprobe xt_${name}; or pin the other backend with --backend=${/legacy/.test(tool) ? 'nft' : 'legacy'}`,
      output: detail,
      run: result,
      otherBackendMayWork: true,
    });
  }
  return new MeshcapError({
    exitCode: ExitCode.Unexpected,
    what: `${context.action} failed (exit ${result.code})`,
    why: 'the tool rejected the input; its message is below',
    fix: 'check the message; run with --log_output_level=default:debug to see the full input',
    output: detail,
    run: result,
  });
}
