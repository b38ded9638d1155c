import { ConfigError, UsageError, parseCaptureConfig, type Env } from '../config/parse.js';
import type { HostFacts } from '../config/types.js';
import type { Analyzer, AnalyzerResult, Evidence, Finding, Reading } from './types.js';

/**
 * Reads the configuration capture init containers print before they act
 * (istio-iptables' `Variables:` / "Istio iptables variables:" block, which
 * kumactl's pre-2.0 transparent proxy prints too, and proxy-init's
 * "Will ignore port [...]" lines) and runs every value through meshcap's own
 * config parser. What the parser rejects becomes `invalid-config` evidence;
 * what the values mean (inbound capture off, a CIDR silently dropped) becomes
 * a reading. Pure; one pass, bounded per block.
 */

/** `PROXY_PORT=15001`, optionally indented or quoted (`> `) as pasted into issues. */
const ASSIGNMENT = /^(?:> ?)?\s{0,8}([A-Z][A-Z0-9_]{1,60})=(.{0,2000})$/;
const BLOCK_START = /(?:^|\s)(?:Variables:|Istio iptables variables:)\s{0,4}$/;
const SEPARATOR = /^(?:> ?)?\s{0,8}-{4,40}\s{0,4}$/;
const LINKERD_IGNORE = /Will ignore port \[([0-9 ,]{0,400})\] on chain PROXY_INIT_(REDIRECT|OUTPUT)/;
const LINKERD_UID = /Ignoring uid (\S{1,40})/;
const LINKERD_OUTPUT = /Redirecting all OUTPUT to (\S{1,20})/;

const MAX_BLOCKS = 4;
const MAX_KEYS = 80;

interface VariableSpec {
  /** The istio-iptables flag that sets it. */
  readonly flag: string;
  /** A comma list whose empty items Istio < 1.7 turned into empty iptables arguments. */
  readonly list?: boolean;
  readonly bool?: boolean;
}

/** istio-iptables' printed variable -> the flag meshcap parses it as (the same names Istio's run.go prints). */
const VARIABLES: Readonly<Record<string, VariableSpec>> = {
  PROXY_PORT: { flag: '-p' },
  PROXY_INBOUND_CAPTURE_PORT: { flag: '-z' },
  INBOUND_CAPTURE_PORT: { flag: '-z' },
  PROXY_TUNNEL_PORT: { flag: '-e' },
  PROXY_UID: { flag: '-u', list: true },
  PROXY_GID: { flag: '-g', list: true },
  INBOUND_INTERCEPTION_MODE: { flag: '-m' },
  INBOUND_TPROXY_MARK: { flag: '-t' },
  INBOUND_TPROXY_ROUTE_TABLE: { flag: '-r' },
  INBOUND_PORTS_INCLUDE: { flag: '-b', list: true },
  INBOUND_PORTS_EXCLUDE: { flag: '-d', list: true },
  OUTBOUND_IP_RANGES_INCLUDE: { flag: '-i', list: true },
  OUTBOUND_IP_RANGES_EXCLUDE: { flag: '-x', list: true },
  OUTBOUND_PORTS_INCLUDE: { flag: '-q', list: true },
  OUTBOUND_PORTS_EXCLUDE: { flag: '-o', list: true },
  KUBEVIRT_INTERFACES: { flag: '-k', list: true },
  KUBE_VIRT_INTERFACES: { flag: '-k', list: true },
  EXCLUDE_INTERFACES: { flag: '-c', list: true },
  DNS_CAPTURE: { flag: '--redirect-dns', bool: true },
  CAPTURE_ALL_DNS: { flag: '--capture-all-dns', bool: true },
  DROP_INVALID: { flag: '--drop-invalid', bool: true },
};
/** Printed variables that are environment-only inputs in Istio. */
const ENV_VARIABLES: Readonly<Record<string, string>> = {
  OUTBOUND_OWNER_GROUPS_INCLUDE: 'ISTIO_OUTBOUND_OWNER_GROUPS',
  OUTBOUND_OWNER_GROUPS_EXCLUDE: 'ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE',
};

/** Parsing a printed value must not depend on this machine: no interfaces, no resolv.conf, no users. */
const NO_HOST: HostFacts = {
  interfaceAddresses: () => [],
  resolvConf: () => '',
  lookupUid: () => undefined,
};

/** What proxy-init printed about its configuration. */
interface LinkerdSeen {
  readonly ignore: Map<string, Evidence & { ports: string }>;
  uid?: Evidence & { uid: string };
  output?: Evidence & { port: string };
}

interface Assignment {
  readonly key: string;
  readonly value: string;
  readonly evidence: Evidence;
}

export class ConfigBlockAnalyzer implements Analyzer {
  private readonly blocks: Assignment[][] = [];
  private current: Assignment[] | undefined;
  private readonly linkerd: LinkerdSeen = { ignore: new Map() };

  line(lineNo: number, text: string): void {
    this.readLinkerd(lineNo, text);
    if (this.current !== undefined) {
      if (SEPARATOR.test(text) && this.current.length === 0) return;
      const m = ASSIGNMENT.exec(text);
      if (m !== null && m[1] !== undefined && this.current.length < MAX_KEYS) {
        this.current.push({ key: m[1], value: (m[2] ?? '').trimEnd(), evidence: { line: lineNo, text } });
        return;
      }
      this.close();
    }
    if (BLOCK_START.test(text) && this.blocks.length < MAX_BLOCKS) this.current = [];
  }

  boundary(): void {
    this.close();
  }

  finish(): AnalyzerResult {
    this.close();
    const findings: Finding[] = [];
    const readings: Reading[] = [];
    for (const block of this.blocks) judgeBlock(block, findings, readings);
    judgeLinkerd(this.linkerd, findings, readings);
    return { findings, markers: [], readings };
  }

  private close(): void {
    if (this.current !== undefined && this.current.length > 0) this.blocks.push(this.current);
    this.current = undefined;
  }

  private readLinkerd(lineNo: number, text: string): void {
    const evidence = { line: lineNo, text };
    const ignore = LINKERD_IGNORE.exec(text);
    if (ignore !== null && ignore[1] !== undefined && ignore[2] !== undefined) {
      this.linkerd.ignore.set(ignore[2], { ...evidence, ports: ignore[1] });
      return;
    }
    const uid = LINKERD_UID.exec(text);
    if (uid !== null && uid[1] !== undefined) {
      this.linkerd.uid = { ...evidence, uid: uid[1] };
      return;
    }
    const output = LINKERD_OUTPUT.exec(text);
    if (output !== null && output[1] !== undefined) this.linkerd.output = { ...evidence, port: output[1] };
  }
}

/** meshcap's verdict on one value, parsed on its own so the error names the line it came from. */
function parseProblem(argv: readonly string[], env: Env): string | undefined {
  try {
    parseCaptureConfig(argv, env, NO_HOST);
    return undefined;
  } catch (error) {
    if (error instanceof ConfigError || error instanceof UsageError) return error.message;
    return undefined;
  }
}

function judgeBlock(block: readonly Assignment[], findings: Finding[], readings: Reading[]): void {
  const byKey = new Map(block.map((a) => [a.key, a]));
  for (const a of block) {
    const spec = VARIABLES[a.key];
    const envName = ENV_VARIABLES[a.key];
    let problem: string | undefined;
    if (spec !== undefined) {
      if (spec.bool) {
        if (a.value !== '' && !/^(?:true|false|1|0|t|f|TRUE|FALSE|True|False)$/.test(a.value)) {
          problem = `${a.key}=${a.value} is not a boolean`;
        }
      } else {
        problem = parseProblem([spec.flag, a.value], {});
      }
      if (problem === undefined && spec.list === true && /^,|,,|,$/.test(a.value)) {
        readings.push({
          text:
            `${a.key} (${spec.flag}) has an empty item (${JSON.stringify(a.value)}): istio-iptables before 1.7 passed it ` +
            "on as an empty port/CIDR and the restore failed; meshcap and newer Istio drop empty items. The usual source is a " +
            'template that joins an empty value (status.sidecar.istio.io/port: "0", an empty annotation).',
          evidence: a.evidence,
        });
        findings.push({ cause: 'invalid-config', name: 'config-empty-item', weight: 0.6, evidence: [a.evidence] });
      }
    } else if (envName !== undefined) {
      problem = parseProblem([], { [envName]: a.value });
    } else {
      continue;
    }
    if (problem === undefined) continue;
    const shifted = /^-{1,2}[a-z]/.test(a.value);
    readings.push({
      text: shifted
        ? `${a.key} is ${JSON.stringify(a.value)}, the next flag: an argument before it was dropped, so every later value is shifted (meshcap rejects this: ${problem}).`
        : `meshcap would reject ${a.key}: ${problem}.`,
      evidence: a.evidence,
    });
    findings.push({ cause: 'invalid-config', name: `config-${a.key}`, weight: shifted ? 0.85 : 0.75, evidence: [a.evidence] });
  }

  const inbound = byKey.get('INBOUND_PORTS_INCLUDE');
  if (inbound !== undefined && inbound.value === '') {
    readings.push({ text: 'Inbound capture is off: INBOUND_PORTS_INCLUDE (-b) is empty, so no inbound port is redirected to the proxy.', evidence: inbound.evidence });
  } else if (inbound !== undefined && inbound.value !== '*') {
    readings.push({
      text: `Only inbound ports ${inbound.value} are captured (-b is a list, not *); INBOUND_PORTS_EXCLUDE applies only with *.`,
      evidence: inbound.evidence,
    });
  }
  const outbound = byKey.get('OUTBOUND_IP_RANGES_INCLUDE');
  if (outbound !== undefined && outbound.value === '') {
    readings.push({ text: 'Outbound capture by destination is off: OUTBOUND_IP_RANGES_INCLUDE (-i) is empty.', evidence: outbound.evidence });
  }
  const mode = byKey.get('INBOUND_INTERCEPTION_MODE');
  if (mode !== undefined && mode.value === 'TPROXY') {
    readings.push({ text: 'Inbound uses TPROXY: the pod needs xt_TPROXY/xt_socket and policy routing (mark and table printed here).', evidence: mode.evidence });
  }
}

function judgeLinkerd(seen: LinkerdSeen, findings: Finding[], readings: Reading[]): void {
  const argv: Array<{ flag: string; value: string; evidence: Evidence; what: string }> = [];
  const inbound = seen.ignore.get('REDIRECT');
  const outbound = seen.ignore.get('OUTPUT');
  if (inbound !== undefined) argv.push({ flag: '-d', value: splitPorts(inbound.ports), evidence: inbound, what: 'inbound ports to ignore' });
  if (outbound !== undefined) argv.push({ flag: '-o', value: splitPorts(outbound.ports), evidence: outbound, what: 'outbound ports to ignore' });
  if (seen.uid !== undefined) argv.push({ flag: '-u', value: seen.uid.uid, evidence: seen.uid, what: 'proxy uid' });
  if (seen.output !== undefined) argv.push({ flag: '-p', value: seen.output.port, evidence: seen.output, what: 'outbound proxy port' });
  for (const item of argv) {
    const problem = parseProblem([item.flag, item.value], {});
    if (problem === undefined) continue;
    const evidence = { line: item.evidence.line, text: item.evidence.text };
    readings.push({ text: `meshcap would reject proxy-init's ${item.what}: ${problem}.`, evidence });
    findings.push({ cause: 'invalid-config', name: `linkerd-${item.flag}`, weight: 0.7, evidence: [evidence] });
  }
}

/** proxy-init prints Go slices: `[4190 4191]`. */
function splitPorts(text: string): string {
  return text.trim().split(/[ ,]{1,10}/).filter((p) => p !== '').join(',');
}

/** Every pattern this analyzer runs, for the linearity check in the tests. */
export const CONFIG_BLOCK_PATTERNS: readonly RegExp[] = [ASSIGNMENT, BLOCK_START, SEPARATOR, LINKERD_IGNORE, LINKERD_UID, LINKERD_OUTPUT];
