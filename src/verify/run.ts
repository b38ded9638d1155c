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
import { planProbes, type Probe } from './probes.js';

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
  const detection = await detectBackend(sys, config.backend, `--backend=${config.backend}`);
  const { variant, saves } = detection.chosen;
  const families = config.ipv6.enabled ? (['ipv4', 'ipv6'] as const) : (['ipv4'] as const);
  return { backend: `iptables-${variant}`, differences: liveDifferences(ruleset, { kind: 'iptables', variant, saves }, { families }) };
}

async function connectAs(sys: System, probe: Probe, timeoutMs: number, switchUser: boolean): Promise<{ ok: boolean; reply?: string; error?: string }> {
  const as = switchUser ? { uid: probe.uid, gid: probe.gid } : {};
  const result = await sys.run(process.execPath, inlineConnectArgs(probe.host, probe.port, timeoutMs), { ...as, timeoutMs: timeoutMs + 5000 });
  try {
    return JSON.parse(result.stdout) as { ok: boolean; reply?: string; error?: string };
  } catch {
    return { ok: false, error: result.stderr.trim() || `exit ${result.code}` };
  }
}

/** The original destination the kernel recorded for a redirected connection, when conntrack is visible. */
function conntrackOriginal(sys: System, probe: Probe, landedPort: number): string | undefined {
  const table = sys.readFile('/proc/net/nf_conntrack');
  if (!table) return undefined;
  const line = table.split('\n').find((l) => l.includes(`dst=${probe.host} `) && l.includes(`dport=${probe.port} `) && l.includes(`sport=${landedPort} `));
  return line ? `${probe.host}:${probe.port}` : undefined;
}

export interface VerifyOptions {
  /** apply has just read the rules back and compared them: only the traffic probes remain. */
  readonly rulesJustVerified?: boolean;
}

export async function verifyCapture(config: CaptureConfig, sys: System, log: Logger, options: VerifyOptions = {}): Promise<VerifyReport> {
  const passed = loggedList(log, 'verify ok: ');
  const skipped: string[] = [];
  // istio-validation runs as the proxy uid without capabilities: it can only probe as itself.
  const myUid = process.getuid?.() ?? 0;
  const privileged = myUid === 0;
  if (options.rulesJustVerified) {
    passed.push('the rules were read back and compared right after applying');
  } else if (!privileged) {
    skipped.push(`rules check: needs root to read the rules (running as uid ${myUid})`);
  } else {
    await checkRules(config, sys, passed);
  }
  const plan = planProbes(config);
  skipped.push(...plan.skipped);
  const probes = plan.probes.filter((probe) => {
    if (privileged || probe.uid === myUid) return true;
    skipped.push(`${probe.name}: needs root to connect as uid ${probe.uid}`);
    return false;
  });
  await runProbes(config, sys, log, probes, passed, skipped, privileged);
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

async function runProbes(config: CaptureConfig, sys: System, log: Logger, probes: readonly Probe[], passed: string[], skipped: string[], privileged: boolean): Promise<void> {
  if (probes.length === 0) return;
  const nonce = randomBytes(4).toString('hex');
  const servers: ProbeServer[] = [];
  try {
    for (const [port, tag] of [[config.proxyPort, 'outbound'], [config.inboundCapturePort, 'inbound']] as const) {
      try {
        servers.push(await startProbeServer([port], `meshcap-verify-${nonce}-${tag}`));
      } catch (error) {
        skipped.push(`traffic probes: cannot listen on port ${port} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); is the proxy already running?`);
        return;
      }
    }
    for (const probe of probes) {
      const timeout = probe.expect === 'not-captured' ? 1000 : 3000;
      const answer = await connectAs(sys, probe, timeout, privileged);
      const landed = answer.ok ? new RegExp(`^meshcap-verify-${nonce}-(outbound|inbound) \\S+ (\\d+)$`).exec(answer.reply ?? '') : null;
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
        const original = conntrackOriginal(sys, probe, config.proxyPort);
        passed.push(`${probe.name}${original ? ` (conntrack keeps the original destination ${original})` : ''}`);
      } else if (probe.expect === 'inbound-capture') {
        if (landed?.[1] !== 'inbound') fail(`the connection did not reach the inbound capture port ${config.inboundCapturePort} (got: ${got})`);
        passed.push(probe.name);
      } else {
        if (landed) fail(`the proxy's own connection was captured (landed on port ${landed[2]}): it would loop back into the proxy`);
        passed.push(`${probe.name} (${got})`);
      }
      log.debug(`verify: ${probe.name}: ${got}`);
    }
  } finally {
    await Promise.all(servers.map((server) => server.close()));
  }
}
