import { CAPTURE_FLAGS } from '../config/flags.js';
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
/** A capture init container in `kubectl describe pod`, then its `Args:` list, one argument per line. */
const DESCRIBE_INIT = /^ {2}(istio-init|istio-validation):\s{0,8}$/;
const DESCRIBE_ARGS = /^ {4}Args:\s{0,8}$/;
const DESCRIBE_ARG = /^ {6}(\S.{0,500})$/;
const BUG_COMPAT_CIDR = /Ignoring error for bug compatibility[^\n]{0,80}: invalid CIDR address: (\S{1,80})/;
const MAX_ARGS = 120;

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

interface ArgList {
  readonly container: string;
  readonly header: Evidence;
  readonly args: Array<{ value: string; evidence?: Evidence }>;
  lastLine: number;
}

export class ConfigBlockAnalyzer implements Analyzer {
  private readonly blocks: Assignment[][] = [];
  private readonly argLists: ArgList[] = [];
  private describeContainer: string | undefined;
  private args: ArgList | undefined;
  private readonly bugCompat: Array<Evidence & { cidr: string }> = [];
  private current: Assignment[] | undefined;
  private readonly linkerd: LinkerdSeen = { ignore: new Map() };

  line(lineNo: number, text: string): void {
    this.readLinkerd(lineNo, text);
    this.readArgs(lineNo, text);
    // Cheap substring checks first: these patterns are rare and every line passes here.
    const dropped = text.includes('bug compatibility') ? BUG_COMPAT_CIDR.exec(text) : null;
    if (dropped !== null && dropped[1] !== undefined && this.bugCompat.length < MAX_BLOCKS) {
      this.bugCompat.push({ line: lineNo, text, cidr: dropped[1] });
    }
    if (this.current !== undefined) {
      if (SEPARATOR.test(text) && this.current.length === 0) return;
      const m = ASSIGNMENT.exec(text);
      if (m !== null && m[1] !== undefined && this.current.length < MAX_KEYS) {
        this.current.push({ key: m[1], value: (m[2] ?? '').trimEnd(), evidence: { line: lineNo, text } });
        return;
      }
      this.close();
    }
    if (text.includes('ariables:') && BLOCK_START.test(text) && this.blocks.length < MAX_BLOCKS) this.current = [];
  }

  boundary(): void {
    this.close();
    this.closeArgs();
    this.describeContainer = undefined;
  }

  finish(): AnalyzerResult {
    this.close();
    this.closeArgs();
    const findings: Finding[] = [];
    const readings: Reading[] = [];
    for (const block of this.blocks) judgeBlock(block, findings, readings);
    for (const list of this.argLists) judgeArgs(list, findings, readings);
    for (const d of this.bugCompat) {
      readings.push({
        text:
          `istio-iptables dropped ${JSON.stringify(d.cidr)} from its CIDR list instead of failing (it is not a CIDR; give it a mask, ` +
          `e.g. ${d.cidr}/32): traffic to it is captured or exempted as if it had not been listed. meshcap rejects such a value.`,
        evidence: { line: d.line, text: d.text },
      });
    }
    judgeLinkerd(this.linkerd, findings, readings);
    return { findings, markers: [], readings };
  }

  private close(): void {
    if (this.current !== undefined && this.current.length > 0) this.blocks.push(this.current);
    this.current = undefined;
  }

  private readArgs(lineNo: number, text: string): void {
    const list = this.args;
    if (list !== undefined) {
      const arg = DESCRIBE_ARG.exec(text);
      if (arg !== null && arg[1] !== undefined) {
        // kubectl prints an empty argument as an empty line, which never reaches analyzers: a gap in line numbers.
        for (let gap = list.lastLine + 1; gap < lineNo && list.args.length < MAX_ARGS; gap += 1) list.args.push({ value: '' });
        if (list.args.length < MAX_ARGS) list.args.push({ value: arg[1].trimEnd(), evidence: { line: lineNo, text } });
        list.lastLine = lineNo;
        return;
      }
      this.closeArgs();
    }
    const container = text.startsWith('  istio-') ? DESCRIBE_INIT.exec(text) : null;
    if (container !== null && container[1] !== undefined) {
      this.describeContainer = container[1];
      return;
    }
    if (this.describeContainer !== undefined && /^ {0,2}\S/.test(text)) this.describeContainer = undefined;
    if (this.describeContainer !== undefined && text.startsWith('    Args:') && DESCRIBE_ARGS.test(text) && this.argLists.length < MAX_BLOCKS) {
      this.args = { container: this.describeContainer, header: { line: lineNo, text }, args: [], lastLine: lineNo };
    }
  }

  private closeArgs(): void {
    if (this.args !== undefined && this.args.args.length > 0) this.argLists.push(this.args);
    this.args = undefined;
  }

  private readLinkerd(lineNo: number, text: string): void {
    if (!text.includes('Will ignore port') && !text.includes('Ignoring uid') && !text.includes('Redirecting all OUTPUT')) return;
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

/** The init container's whole command line, parsed as meshcap would parse it. */
function judgeArgs(list: ArgList, findings: Finding[], readings: Reading[]): void {
  const values = list.args.map((a) => a.value);
  // `istio-iptables` / `pilot-agent istio-iptables` precede the flags.
  let start = 0;
  while (start < values.length && !values[start]?.startsWith('-')) start += 1;
  const argv = values.slice(start);
  if (argv.length === 0) return;
  // A flag that takes a value followed by another flag: an argument went missing and the rest is shifted.
  for (let i = start; i < list.args.length - 1; i += 1) {
    const flag = list.args[i];
    const next = list.args[i + 1];
    if (flag === undefined || next === undefined || !takesValue(flag.value) || !/^-{1,2}[a-z]/.test(next.value)) continue;
    const evidence = next.evidence ?? list.header;
    readings.push({
      text:
        `${list.container}'s arguments are shifted: ${flag.value} is followed by ${next.value}, so ${next.value} is taken as its value ` +
        `and every later argument moves one place (an argument is missing after ${flag.value}; an empty value must still be passed as "").`,
      evidence,
    });
    findings.push({ cause: 'invalid-config', name: 'describe-args', weight: 0.85, evidence: compactEvidence([list.header, flag.evidence, evidence]) });
    return;
  }
  const problem = parseProblem(argv, {});
  if (problem === undefined) {
    const b = argv.indexOf('-b');
    if (b >= 0 && argv[b + 1] === '') {
      readings.push({ text: `${list.container} runs with -b "": inbound capture is off (no inbound port is redirected to the proxy).`, evidence: list.header });
    }
    return;
  }
  // Quote the argument the parser complained about, when it can be found.
  const culprit = list.args.find((a, i) => i >= start && a.evidence !== undefined && a.value !== '' && problem.includes(JSON.stringify(a.value)));
  const evidence = culprit?.evidence ?? list.header;
  const shifted = culprit !== undefined && /^-{1,2}[a-z]/.test(culprit.value);
  readings.push({
    text: shifted
      ? `${list.container}'s arguments are shifted: ${JSON.stringify(culprit.value)} is taken as the value of the flag before it (an argument is missing there); meshcap would reject it: ${problem}.`
      : `meshcap would reject ${list.container}'s arguments: ${problem}.`,
    evidence,
  });
  findings.push({ cause: 'invalid-config', name: 'describe-args', weight: shifted ? 0.85 : 0.75, evidence: [list.header, evidence] });
}

const VALUE_FLAGS = new Set(
  CAPTURE_FLAGS.filter((f) => f.kind === 'string').flatMap((f) => [`--${f.long}`, ...(f.short === undefined ? [] : [`-${f.short}`])]),
);

function takesValue(arg: string): boolean {
  return VALUE_FLAGS.has(arg);
}

function compactEvidence(items: ReadonlyArray<Evidence | undefined>): Evidence[] {
  const seen = new Set<number>();
  return items.filter((e): e is Evidence => e !== undefined && !seen.has(e.line) && (seen.add(e.line), true));
}

/** proxy-init prints Go slices: `[4190 4191]`. */
function splitPorts(text: string): string {
  return text.trim().split(/[ ,]{1,10}/).filter((p) => p !== '').join(',');
}

/** Every pattern this analyzer runs, for the linearity check in the tests. */
export const CONFIG_BLOCK_PATTERNS: readonly RegExp[] = [
  ASSIGNMENT,
  BLOCK_START,
  SEPARATOR,
  LINKERD_IGNORE,
  LINKERD_UID,
  LINKERD_OUTPUT,
  DESCRIBE_INIT,
  DESCRIBE_ARGS,
  DESCRIBE_ARG,
  BUG_COMPAT_CIDR,
];
