/**
 * `meshcap verify`: the live rules equal the desired ones, and real
 * connections inside the namespace go where the config says.
 */
import { randomBytes } from 'node:crypto';
import { detectBackend } from '../backend/detect.js';
import { readNftListing } from '../backend/nft-read.js';
import type { System } from '../backend/system.js';
import { ExitCode, MeshcapError } from '../errors.js';
import type { Logger } from '../log.js';
import type { CaptureConfig } from '../config/types.js';
import { inlineConnectArgs } from '../probe/client.js';
import { startProbeServer, type ProbeServer } from '../probe/server.js';
import { buildRuleset } from '../rules/build.js';
import { liveDifferences } from '../state/compare.js';
import { assignProbes, identityFromStatus, keepInsidePod, planProbes, type Probe, type ProbeRun } from './probes.js';

/** A list whose additions are logged at once, so a later failure still shows what held. */
function loggedList(log: Logger, prefix: string): string[] {
  const list: string[] = [];
  const push = list.push.bind(list);
  list.push = (...items: string[]) => {
    for (const item of items) log.info(`${prefix}${item}`);
    return push(...items);
  };
  return list;
}

export interface VerifyReport {
  readonly passed: readonly string[];
  readonly skipped: readonly string[];
}

/** The rules part: differences between live and desired, for the backend holding the capture. */
export async function ruleDifferences(config: CaptureConfig, sys: System): Promise<{ backend: string; differences: string[] }> {
  const ruleset = buildRuleset(config);
  if (config.nativeNftables) {
    const nft = sys.which('nft');
    if (!nft) throw new MeshcapError({ exitCode: ExitCode.Unsupported, what: 'verifying native nftables: nft not found on PATH', why: 'the image has no nftables tools', fix: 'install nftables' });
    return { backend: 'nftables', differences: liveDifferences(ruleset, { kind: 'nftables', listing: await readNftListing(sys, nft) }) };
  }
  const detection = await detectBackend(sys, config.backend, config.backendPinnedBy);
  const { variant, saves } = detection.chosen;
  const families = config.ipv6.enabled ? (['ipv4', 'ipv6'] as const) : (['ipv4'] as const);
  return { backend: `iptables-${variant}`, differences: liveDifferences(ruleset, { kind: 'iptables', variant, saves }, { families }) };
}

interface Answer {
  readonly ok: boolean;
  readonly reply?: string;
  readonly error?: string;
  readonly localPort?: number;
  /** The probe could not be started as that user (e.g. EPERM without CAP_SETUID). */
  readonly cannotSwitch?: string;
}

async function connectAs(sys: System, run: ProbeRun, timeoutMs: number): Promise<Answer> {
  const { probe } = run;
  const as = run.switchUser ? { uid: probe.uid, gid: probe.gid } : {};
  const result = await sys.run(process.execPath, inlineConnectArgs(probe.host, probe.port, timeoutMs), { ...as, timeoutMs: timeoutMs + 5000 });
  if (result.spawnError && run.switchUser) return { ok: false, cannotSwitch: result.spawnError };
  try {
    return JSON.parse(result.stdout) as Answer;
  } catch {
    return { ok: false, error: result.stderr.trim() || `exit ${result.code}` };
  }
}

/**
 * The original destination the kernel recorded for a redirected connection:
 * the conntrack entry whose original tuple is the probe's own connection and
 * whose reply comes from the port it landed on. Pure.
 */
export function conntrackOriginal(table: string | undefined, probe: Pick<Probe, 'host' | 'port'>, localPort: number | undefined, landedPort: number): string | undefined {
  if (!table || !localPort) return undefined;
  // An entry holds two tuples: the original (as sent) and the reply (as the redirect answers).
  const tuple = /src=\S+ dst=(\S+) sport=(\d+) dport=(\d+) /g;
  const entry = table.split('\n').find((line) => {
    const [original, reply] = [...line.matchAll(tuple)];
    return original !== undefined && reply !== undefined &&
      original[1] === probe.host && Number(original[2]) === localPort && Number(original[3]) === probe.port &&
      Number(reply[2]) === landedPort && Number(reply[3]) === localPort;
  });
  return entry ? `${probe.host}:${probe.port}` : undefined;
}

export interface VerifyOptions {
  /** apply has just read the rules back and compared them: only the traffic probes remain. */
  readonly rulesJustVerified?: boolean;
}

export async function verifyCapture(config: CaptureConfig, sys: System, log: Logger, options: VerifyOptions = {}): Promise<VerifyReport> {
  const passed = loggedList(log, 'verify ok: ');
  const skipped: string[] = [];
  const me = identityFromStatus(sys.readFile('/proc/self/status'), { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 });
  // istio-validation runs as the proxy uid without capabilities: it can neither read the rules nor switch users.
  let rulesKnownGood = false;
  if (options.rulesJustVerified) {
    passed.push('the rules were read back and compared right after applying');
    rulesKnownGood = true;
  } else if (!me.canReadRules) {
    skipped.push(`rules check: reading the rules needs CAP_NET_ADMIN (running as uid ${me.uid} without it)`);
  } else {
    await checkRules(config, sys, passed);
    rulesKnownGood = true;
  }
  const plan = planProbes(config);
  skipped.push(...plan.skipped);
  const assigned = assignProbes(config, plan.probes, me);
  skipped.push(...assigned.skipped);
  const inside = keepInsidePod(assigned.runs, { rulesChecked: rulesKnownGood, procNetRoute: sys.readFile('/proc/net/route') });
  skipped.push(...inside.skipped);
  const runs = inside.runs;
  await runProbes(config, sys, log, runs, passed, skipped);
  return { passed, skipped };
}

async function checkRules(config: CaptureConfig, sys: System, passed: string[]): Promise<void> {
  const { backend, differences } = await ruleDifferences(config, sys);
  if (differences.length > 0) {
    throw new MeshcapError({
      exitCode: ExitCode.VerifyFailed,
      what: `verify: the live ${backend} rules are not the ones this configuration asks for`,
      why: `${differences.length} difference${differences.length === 1 ? '' : 's'} (listed below)`,
      fix: "run 'meshcap apply' with the same flags to reconcile, or find what rewrote them",
      output: differences.join('\n'),
    });
  }
  passed.push(`the live ${backend} rules equal the desired ones`);
}

async function runProbes(config: CaptureConfig, sys: System, log: Logger, runs: readonly ProbeRun[], passed: string[], skipped: string[]): Promise<void> {
  if (runs.length === 0) return;
  const nonce = randomBytes(4).toString('hex');
  const servers: ProbeServer[] = [];
  // The bypass probe's own destination answers too: a bypassed connection is proven by reaching it.
  const listeners: [number, string][] = [[config.proxyPort, 'outbound'], [config.inboundCapturePort, 'inbound']];
  if (runs.some((run) => run.probe.expect === 'not-captured')) listeners.push([config.inboundTunnelPort, 'direct']);
  try {
    for (const [port, tag] of listeners) {
      try {
        servers.push(await startProbeServer([port], `meshcap-verify-${nonce}-${tag}`));
      } catch (error) {
        skipped.push(`traffic probes: cannot listen on port ${port} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); is the proxy already running?`);
        return;
      }
    }
    for (const run of runs) {
      const { probe } = run;
      const timeout = 3000;
      const answer = await connectAs(sys, run, timeout);
      if (answer.cannotSwitch) {
        skipped.push(`${probe.name}: not run, switching to uid ${probe.uid} failed (${answer.cannotSwitch}); it needs CAP_SETUID and CAP_SETGID`);
        continue;
      }
      const landed = answer.ok ? new RegExp(`^meshcap-verify-${nonce}-(outbound|inbound|direct) \\S+ (\\d+)$`).exec(answer.reply ?? '') : null;
      const got = answer.ok ? `answer ${JSON.stringify(answer.reply)}` : answer.error;
      const fail = (why: string) => {
        throw new MeshcapError({
          exitCode: ExitCode.VerifyFailed,
          what: `verify: ${probe.name}: FAILED`,
          why: why,
          fix: "check the rules with 'meshcap status' / 'iptables-save'; re-run 'meshcap apply' with the same flags",
        });
      };
      if (probe.expect === 'outbound-capture') {
        if (landed?.[1] !== 'outbound') fail(`the connection did not reach the proxy's outbound port ${config.proxyPort} (got: ${got})`);
        const original = conntrackOriginal(sys.readFile('/proc/net/nf_conntrack'), probe, answer.localPort, config.proxyPort);
        passed.push(`${probe.name}${original ? ` (conntrack keeps the original destination ${original})` : ' (the original destination was not checked: no readable conntrack entry)'}`);
      } else if (probe.expect === 'inbound-capture') {
        if (landed?.[1] !== 'inbound') fail(`the connection did not reach the inbound capture port ${config.inboundCapturePort} (got: ${got})`);
        passed.push(probe.name);
      } else {
        if (landed && landed[1] !== 'direct') fail(`the proxy's own connection was captured (landed on port ${landed[2]}): it would loop back into the proxy`);
        if (!landed) fail(`the proxy's own connection did not reach ${probe.host}:${probe.port} (got: ${got})`);
        passed.push(`${probe.name} (reached ${probe.host}:${probe.port} itself)`);
      }
      log.debug(`verify: ${probe.name}: ${got}`);
    }
  } finally {
    await Promise.all(servers.map((server) => server.close()));
  }
}
