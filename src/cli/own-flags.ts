/**
 * The diagnosis commands (trace, explain, status) take istio-iptables' flags
 * to describe a configuration, plus a few of their own. Their own flags are
 * long-only and taken out first; the rest goes to the capture-flag parser
 * unchanged, so an istio-init command line can be pasted as is.
 */
import { ConfigError } from '../config/parse.js';
import type { System } from '../backend/system.js';
import { selfArgv } from './self.js';

/** A user mistake in one of our flags: exit 2, one line saying what, why and how to fix it. */
export function badFlag(flag: string, value: string, problem: string, fix: string): ConfigError {
  return new ConfigError(flag, value, problem, fix, '');
}

export type OwnFlagKind = 'string' | 'bool' | 'optional';

export interface OwnFlags {
  readonly values: ReadonlyMap<string, string | true>;
  readonly rest: readonly string[];
}

/**
 * `--name value`, `--name=value`; bools take no value; `optional` flags are
 * bools that accept `--name=value` (e.g. `--live` or `--live=legacy`).
 */
export function takeOwnFlags(argv: readonly string[], spec: Readonly<Record<string, OwnFlagKind>>): OwnFlags {
  const values = new Map<string, string | true>();
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    const match = /^--([a-z][a-z0-9-]*)(?:=(.*))?$/s.exec(arg);
    const kind = match ? spec[match[1]!] : undefined;
    if (!match || !kind) {
      rest.push(arg);
      continue;
    }
    const name = match[1]!;
    const inline = match[2];
    if (kind === 'bool') {
      if (inline !== undefined && inline !== 'true') {
        if (inline === 'false') continue;
        throw badFlag(`--${name}`, inline, 'takes no value', `write --${name} alone`);
      }
      values.set(name, true);
    } else if (kind === 'optional') {
      values.set(name, inline ?? true);
    } else if (inline !== undefined) {
      values.set(name, inline);
    } else {
      if (i + 1 >= argv.length) throw badFlag(`--${name}`, '', 'needs a value', `write --${name} VALUE`);
      values.set(name, argv[++i]!);
    }
  }
  return { values, rest };
}

/** Arguments without the namespace selectors (for the re-executed command). */
export function withoutNamespaceFlags(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--netns' || arg === '--pid') {
      i++;
      continue;
    }
    if (/^--(netns|pid)=/.test(arg)) continue;
    out.push(arg);
  }
  return out;
}

/**
 * Re-runs this meshcap command inside another network namespace
 * (`ip netns exec NAME` or `nsenter -t PID -n`), so every tool it runs and
 * every interface it sees are that namespace's. Returns the child's result.
 */
export async function runInNamespace(
  sys: System,
  target: { netns?: string; pid?: string },
  command: string,
  argv: readonly string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const self = [...selfArgv(), command, ...withoutNamespaceFlags(argv)];
  let file: string;
  let args: string[];
  if (target.netns !== undefined) {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(target.netns)) {
      throw badFlag('--netns', target.netns, 'is not a network namespace name', "list them with 'ip netns list'");
    }
    const ip = sys.which('ip');
    if (!ip) throw badFlag('--netns', target.netns, "needs the 'ip' binary (iproute2), which is not on PATH", 'install iproute2, or use --pid');
    file = ip;
    args = ['netns', 'exec', target.netns, ...self];
  } else {
    if (!/^[1-9][0-9]{0,9}$/.test(target.pid ?? '')) {
      throw badFlag('--pid', target.pid ?? '', 'is not a process id', "give the pid of a process in the pod (e.g. from 'crictl inspect')");
    }
    const nsenter = sys.which('nsenter');
    if (!nsenter) throw badFlag('--pid', target.pid!, "needs 'nsenter' (util-linux), which is not on PATH", 'install util-linux, or use --netns');
    file = nsenter;
    args = ['-t', target.pid!, '-n', ...self];
  }
  const label = target.netns !== undefined ? `network namespace ${target.netns}` : `the network namespace of pid ${target.pid}`;
  const result = await sys.run(file, args, { env: { MESHCAP_NETNS_LABEL: label } });
  if (result.code !== 0 && result.stdout === '' && /Cannot open network namespace|No such file|No such process|failed to open|reassociate/i.test(result.stderr)) {
    const [flag, value] = target.netns !== undefined ? ['--netns', target.netns] : ['--pid', target.pid!];
    throw badFlag(flag, value, `cannot be entered (${result.stderr.trim().split('\n')[0]})`, "check it with 'ip netns list' or 'ps', and run as root");
  }
  return { code: result.code, stdout: result.stdout, stderr: result.stderr };
}

/**
 * With `--netns NAME` or `--pid PID`, re-runs the command there, passes its
 * output through and returns its exit code; without them, undefined.
 */
export async function reRunInRequestedNamespace(
  values: OwnFlags['values'],
  sys: System,
  command: string,
  argv: readonly string[],
  out: { stdout(text: string): void; stderr(text: string): void },
): Promise<number | undefined> {
  if (!values.has('netns') && !values.has('pid')) return undefined;
  const target = values.has('netns') ? { netns: String(values.get('netns')) } : { pid: String(values.get('pid')) };
  const result = await runInNamespace(sys, target, command, argv);
  out.stdout(result.stdout);
  out.stderr(result.stderr);
  return result.code;
}
