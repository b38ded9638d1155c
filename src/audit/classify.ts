/**
 * One pod's live capture (every backend) against the capture its annotations
 * ask for -> one state and what differs. Structure comes from `status`
 * (which backends hold mesh rules, are the hooks complete, rule differences);
 * on top of it the simulator walks an app's outbound connection and an
 * inbound one through the live rules, the mesh rules alone and the desired
 * rules, which tells "another tool's rule defeats the capture" from "the
 * capture is broken" without sending a packet. Pure.
 */
import type { CaptureConfig } from '../config/types.js';
import { type IpAddress, cidrContains, formatIp, parseIp } from '../net/ip.js';
import { MESH_NFT_TABLES } from '../rules/constants.js';
import { parseSave } from '../state/iptables-save.js';
import { parseNftListing } from '../state/nft-listing.js';
import { isMeshChain, isMeshRule } from '../state/ownership.js';
import { buildRuleset } from '../rules/build.js';
import type { Family, Ruleset } from '../rules/model.js';
import { analyzeStatus } from '../status/analyze.js';
import { type DerivedConfig, deriveConfig } from '../status/derive.js';
import type { NamespaceRead } from '../status/gather.js';
import { type SourceName, SOURCES, liveRuleset, meshRuleCounts } from '../status/sources.js';
import { simRulesetFromConfig } from '../trace/from-config.js';
import type { Packet, SimRuleset } from '../trace/model.js';
import { type TraceResult, simulate } from '../trace/simulate.js';
import type { PodVerdict } from './types.js';

/** What the classifier reads: the three rule sources, plus routing for TPROXY. */
export type AuditRead = Pick<NamespaceRead, 'legacy' | 'nft' | 'nftables' | 'nftablesProblem' | 'ipRules' | 'routeTables'> & Partial<Pick<NamespaceRead, 'loAddresses'>>;

/** Rule differences listed in details before "and N more": enough to see the pattern, short enough for a line. */
const MAX_RULE_LINES = 6;

export function classifyCapture(read: AuditRead, desired: CaptureConfig, addresses: readonly string[]): PodVerdict {
  const verdict = classifyStructure(read, desired, addresses);
  const foreignRules = otherToolsRules(read);
  return foreignRules.length > 0 ? { ...verdict, foreignRules } : verdict;
}

const MAX_FOREIGN_LINES = 10;

/** Every rule in the pod that is not the mesh's, as `backend table: -A CHAIN spec` (nftables: per table). */
export function otherToolsRules(read: AuditRead): string[] {
  const out: string[] = [];
  for (const [name, ipt] of [['iptables-legacy', read.legacy], ['iptables-nft', read.nft]] as const) {
    for (const [family, text] of Object.entries(ipt.saves)) {
      for (const table of parseSave(text ?? '').values()) {
        for (const rule of table.rules) {
          if (!isMeshRule(table.name, rule)) out.push(`${name}${family === 'ipv6' ? ' (IPv6)' : ''} ${table.name}: -A ${rule.chain} ${rule.spec}`);
        }
      }
    }
  }
  for (const [table, chains] of parseNftListing(read.nftables ?? '')) {
    if (MESH_NFT_TABLES.includes(table)) continue;
    const rules = [...chains.values()].reduce((n, c) => n + c.rules.length, 0);
    out.push(`nftables: table ${table} (${rules} rule${rules === 1 ? '' : 's'})`);
  }
  return out.length > MAX_FOREIGN_LINES ? [...out.slice(0, MAX_FOREIGN_LINES), `and ${out.length - MAX_FOREIGN_LINES} more`] : out;
}

function classifyStructure(read: AuditRead, desired: CaptureConfig, addresses: readonly string[]): PodVerdict {
  const counts = meshRuleCounts(read);
  const holding = SOURCES.filter((s) => counts[s] > 0);
  const unreadable = unreadableSources(read);
  if (holding.length === 0) {
    // "Missing" is only said, and only repaired, when every backend that exists could be read.
    if (unreadable.length > 0) {
      return { state: 'unreadable', details: unreadable.map((s) => `${s} could not be read (${problemOf(read, s)}): the capture may be there`) };
    }
    return { state: 'missing', details: [`no mesh chains or jumps in ${SOURCES.join(', ')}: the pod's traffic bypasses the proxy`] };
  }
  if (holding.length > 1) {
    return {
      state: 'duplicated-backend',
      details: [
        `mesh rules in ${holding.map((s) => `${s} (${counts[s]})`).join(' and ')}: the kernel runs all of them, and each tool shows only its own part`,
      ],
    };
  }
  const holder = holding[0]!;
  // The backend is not part of the desired capture (the annotations do not choose it): compare in the one that holds it.
  const config: CaptureConfig = {
    ...desired,
    nativeNftables: holder === 'nftables',
    backend: holder === 'iptables-legacy' ? 'legacy' : 'nft',
  };
  const ruleset = buildRuleset(config);
  const report = analyzeStatus({ read: { ...emptyRead, ...read } as NamespaceRead, config, ruleset });
  const backend = report.backends.find((b) => b.name === holder)!;
  const probes = probeCapture(read, holder, config, ruleset, addresses);

  const problems = [...backend.problems, ...emptyJumpTargets(liveRuleset(read, 'ipv4', holder).ruleset)];
  if (problems.length > 0) {
    return { state: 'partial', details: [...problems, ...probes.failures.map((f) => f.line)], holder };
  }
  const defeated = probes.failures.filter((f) => f.meshAloneCaptures);
  if (defeated.length > 0) {
    return { state: 'foreign-conflict', details: defeated.map((f) => f.line), holder };
  }
  const drift = report.drift ?? [];
  if (drift.length > 0) {
    const flags = flagDifferences(backend.derived, derivedOf(config, ruleset));
    return {
      state: 'drifted',
      details: [
        ...(flags.length > 0 ? [`live capture is another configuration: ${flags.join('; ')}`] : []),
        ...drift.slice(0, MAX_RULE_LINES),
        ...(drift.length > MAX_RULE_LINES ? [`and ${drift.length - MAX_RULE_LINES} more rule differences`] : []),
      ],
      holder,
    };
  }
  if (probes.failures.length > 0) {
    // Same rules as desired but a different walk: something outside the rules compared decides it.
    return { state: 'foreign-conflict', details: probes.failures.map((f) => f.line), holder };
  }
  return { state: 'ok', details: [], holder };
}

/**
 * Mesh chains that are jumped to but hold nothing: a chain left empty (`iptables -F ISTIO_OUTPUT`).
 * No istio-iptables configuration writes one; a configuration that needs no rules there writes no jump.
 */
export function emptyJumpTargets(rs: SimRuleset): string[] {
  const out: string[] = [];
  for (const [table, chains] of rs.tables) {
    for (const [from, chain] of chains) {
      for (const rule of chain.rules) {
        if (rule.target.kind !== 'jump' && rule.target.kind !== 'goto') continue;
        const to = rule.target.chain;
        if (!isMeshChain(to) || chains.get(to)?.rules.length !== 0) continue;
        const line = `${table} ${from} jumps to ${to}, which is empty`;
        if (!out.includes(line)) out.push(line);
      }
    }
  }
  return out;
}

const emptyRead: Partial<NamespaceRead> = { ipRules: {}, routeTables: {} };

function unreadableSources(read: AuditRead): SourceName[] {
  const out: SourceName[] = [];
  if (read.legacy.saves.ipv4 === undefined && read.legacy.problem && !/no iptables-legacy binaries/.test(read.legacy.problem)) out.push('iptables-legacy');
  if (read.nft.saves.ipv4 === undefined && read.nft.problem && !/no iptables-nft binaries/.test(read.nft.problem)) out.push('iptables-nft');
  if (read.nftables === undefined && read.nftablesProblem && !/not on PATH/.test(read.nftablesProblem)) out.push('nftables');
  return out;
}

function problemOf(read: AuditRead, source: SourceName): string {
  return (source === 'iptables-legacy' ? read.legacy.problem : source === 'iptables-nft' ? read.nft.problem : read.nftablesProblem) ?? 'no output';
}

/** The live capture as flags next to the desired one as flags (both derived the same way), where they differ. */
export function flagDifferences(live: DerivedConfig | undefined, desired: DerivedConfig): string[] {
  if (!live) return [];
  const liveFlags = new Map(live.flags);
  const out: string[] = [];
  for (const [flag, want] of desired.flags) {
    const have = liveFlags.get(flag);
    if (have !== undefined && have !== want) out.push(`${flag} is ${show(have)}, expected ${show(want)}`);
  }
  for (const [flag, have] of live.flags) {
    if (!desired.flags.some(([f]) => f === flag)) out.push(`${flag} ${show(have)} is set, expected unset`);
  }
  for (const [name, want] of Object.entries(desired.env)) if (live.env[name] !== want) out.push(`${name} is ${show(live.env[name] ?? '')}, expected ${show(want)}`);
  return out;
}

const show = (value: string) => (value === '' ? "''" : value);

function derivedOf(config: CaptureConfig, ruleset: Ruleset): DerivedConfig {
  const fwmark = new Map([[config.tproxyMark, String(config.tproxyRouteTable)]]);
  return deriveConfig(simRulesetFromConfig(ruleset, 'ipv4'), config.ipv6.enabled ? simRulesetFromConfig(ruleset, 'ipv6') : undefined, fwmark);
}

interface ProbeFailure {
  readonly line: string;
  /** The mesh's own rules, with every other tool's rule taken out, would capture it. */
  readonly meshAloneCaptures: boolean;
}

/**
 * Walks a connection the desired capture takes to the proxy through the live
 * rules: an app's outbound TCP and, when inbound is captured, inbound TCP to
 * the pod. Simulated only: nothing is sent.
 */
export function probeCapture(read: AuditRead, holder: SourceName, config: CaptureConfig, ruleset: Ruleset, addresses: readonly string[]): { failures: ProbeFailure[] } {
  const pod = addresses.map((a) => parseIp(a)).find((a): a is IpAddress => a !== undefined) ?? parseIp('198.18.0.2')!;
  const family: Family = pod.family === 6 ? 'ipv6' : 'ipv4';
  if (family === 'ipv6' && !config.ipv6.enabled) return { failures: [] };
  const desired = simRulesetFromConfig(ruleset, family);
  const live = liveRuleset(read, family, holder).ruleset;
  const meshOnly = holder === 'nftables' ? live : withoutForeignRules(live);
  const failures: ProbeFailure[] = [];
  for (const packet of [outboundProbe(config, desired, pod), inboundProbe(config, desired, pod)]) {
    if (!packet) continue;
    const want = simulate(desired, packet).verdict;
    const have = simulate(live, packet);
    if (sameVerdict(want, have.verdict)) continue;
    const foreign = foreignSteps(have);
    const meshAloneCaptures = sameVerdict(want, simulate(meshOnly, packet).verdict);
    const what = packet.direction === 'outbound' ? `outbound TCP to ${formatIp(packet.dst)}:${packet.dport} (uid ${packet.uid})` : `inbound TCP to port ${packet.dport}`;
    const by = meshAloneCaptures && foreign.length > 0 ? `; decided by another tool's rule: ${foreign.join(' | ')}` : '';
    failures.push({ line: `${what}: the desired capture has it ${want.summary}; the live rules: ${have.verdict.summary}${by}`, meshAloneCaptures });
  }
  return { failures };
}

function sameVerdict(a: TraceResult['verdict'], b: TraceResult['verdict']): boolean {
  if (a.kind !== b.kind) return false;
  if ((a.kind === 'redirect' || a.kind === 'tproxy') && (b.kind === 'redirect' || b.kind === 'tproxy')) return a.port === b.port;
  return true;
}

const captured = (verdict: TraceResult['verdict']) => verdict.kind === 'redirect' || verdict.kind === 'tproxy';

const TEST_NETS = ['203.0.113.10', '198.51.100.10', '192.0.2.10'];
const TEST_NETS_V6 = ['2001:db8:ffff::10'];
const APP_PORTS = [80, 8080, 443, 9080, 12345];

function outboundProbe(config: CaptureConfig, desired: SimRuleset, pod: IpAddress): Packet | undefined {
  const v6 = pod.family === 6;
  const includes = v6 ? config.outboundCidrs.v6 : config.outboundCidrs.v4;
  const destinations = [...(config.outboundCidrs.wildcard ? (v6 ? TEST_NETS_V6 : TEST_NETS).map((t) => parseIp(t)!) : []), ...includes.map((c) => c.addr)].filter(
    (d) => !(v6 ? config.outboundCidrsExclude.v6 : config.outboundCidrsExclude.v4).some((c) => cidrContains(c, d)),
  );
  const ports = [...config.outboundPorts, ...APP_PORTS];
  // An app uid and gid the proxy's exemption does not cover.
  const uid = [1000, 1001, 4242].find((u) => !config.proxyUids.includes(String(u)) && !config.proxyGids.includes(String(u))) ?? 4242;
  for (const dst of destinations) {
    for (const dport of ports) {
      const packet = tcpPacket('outbound', pod, dst, dport, { uid, gid: uid, outIface: 'eth0' });
      if (captured(simulate(desired, packet).verdict)) return packet;
    }
  }
  return undefined;
}

function inboundProbe(config: CaptureConfig, desired: SimRuleset, pod: IpAddress): Packet | undefined {
  const ports = config.inboundPorts.kind === 'list' ? config.inboundPorts.ports : config.inboundPorts.kind === 'all' ? APP_PORTS : [];
  const src = parseIp(pod.family === 6 ? '2001:db8:ffff::1' : '192.0.2.1')!;
  for (const dport of ports) {
    const packet = tcpPacket('inbound', src, pod, dport, { inIface: 'eth0' });
    if (captured(simulate(desired, packet).verdict)) return packet;
  }
  return undefined;
}

/** The first packet of a TCP connection. */
function tcpPacket(direction: Packet['direction'], src: IpAddress, dst: IpAddress, dport: number, rest: Pick<Packet, 'uid' | 'gid' | 'inIface' | 'outIface'>): Packet {
  return { direction, family: dst.family === 6 ? 'ipv6' : 'ipv4', proto: 'tcp', src, dst, sport: 40000, dport, state: 'new', mark: 0, ctmark: 0, ...rest };
}

/** The live ruleset with only the mesh's rules: what the capture would do if no other tool had written anything. */
function withoutForeignRules(live: SimRuleset): SimRuleset {
  const tables = new Map(
    [...live.tables].map(([table, chains]) => [
      table,
      new Map([...chains].map(([chain, c]) => [chain, { ...c, rules: c.rules.filter((r) => isMeshRule(table, { chain, spec: r.text })) }])),
    ]),
  );
  return { ...live, source: `${live.source}, mesh rules only`, tables };
}

/** Rules of other tools that the walk matched, as `table CHAIN: -A ...`. */
function foreignSteps(trace: TraceResult): string[] {
  const out: string[] = [];
  for (const step of trace.steps) {
    if (step.kind !== 'rule' || !step.matched) continue;
    if (isMeshRule(step.table, { chain: step.chain, spec: step.text })) continue;
    out.push(`${step.table}: -A ${step.chain} ${step.text}`);
  }
  return out;
}
