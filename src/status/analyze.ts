/**
 * What `meshcap status` concludes from a namespace's rules and routes: per
 * backend, are mesh rules present and complete, which configuration they
 * match, drift against a given one, foreign rules, TPROXY routing, `::6` on
 * lo, and the warnings operators need ("`iptables` shows nothing"). Pure.
 */
import type { CaptureConfig } from '../config/types.js';
import { Chain, MESH_NFT_TABLES } from '../rules/constants.js';
import { type Family, type Ruleset, familyLabel } from '../rules/model.js';
import { liveDifferences } from '../state/compare.js';
import { hasPassthroughV6, isLocalDefaultRoute, parseFwmarkRules } from '../state/ip-rules.js';
import { countRules, parseSave } from '../state/iptables-save.js';
import { parseNftListing } from '../state/nft-listing.js';
import { countMeshRules } from '../state/ownership.js';
import type { SimRuleset, SimTableName } from '../trace/model.js';
import { type DerivedConfig, deriveConfig } from './derive.js';
import type { NamespaceRead } from './gather.js';
import { type SourceName, SOURCES, liveRuleset, liveRulesOf, meshRuleCounts } from './sources.js';

export type Health = 'healthy' | 'absent' | 'incomplete' | 'drifted' | 'conflict';

export interface BackendStatus {
  readonly name: SourceName;
  readonly readable: boolean;
  readonly problem?: string;
  readonly meshRules: Partial<Record<Family, number>>;
  readonly foreignRules: Partial<Record<Family, number>>;
  readonly present: boolean;
  /** Completeness problems; empty when complete (or absent). */
  readonly problems: readonly string[];
  readonly derived?: DerivedConfig;
}

export interface StatusReport {
  readonly health: Health;
  readonly summary: string;
  readonly backends: readonly BackendStatus[];
  /** The backend holding the capture (the one compared and derived from). */
  readonly active?: SourceName;
  readonly tproxyRouting: readonly { readonly family: Family; readonly mark: number; readonly table: string; readonly localRoute: boolean; readonly spec: string }[];
  readonly passthroughV6OnLo?: boolean;
  /** Differences from the given configuration; undefined when none was given. */
  readonly drift?: readonly string[];
  readonly warnings: readonly string[];
  /** Facts that need no action. */
  readonly notes: readonly string[];
}

export interface StatusInput {
  readonly read: NamespaceRead;
  readonly config?: CaptureConfig;
  readonly ruleset?: Ruleset;
  /** Checks a derived flag list by building its rules; returns differences, or undefined when it cannot be built. */
  readonly roundTrip?: (derived: DerivedConfig, source: SourceName) => string[] | undefined;
}

const FAMILIES: readonly Family[] = ['ipv4', 'ipv6'];
const name = familyLabel;

/** Hooks that must lead into the mesh's chains, given what the chains do. */
export function completenessProblems(rs: SimRuleset): string[] {
  const problems: string[] = [];
  const chain = (table: SimTableName, c: string) => rs.tables.get(table)?.get(c);
  const rules = (table: SimTableName, c: string) => chain(table, c)?.rules ?? [];
  const jumps = (table: SimTableName, from: string, to: string) =>
    rules(table, from).some((r) => (r.target.kind === 'jump' || r.target.kind === 'goto') && r.target.chain === to);
  const hasTarget = (table: SimTableName, c: string, kind: 'redirect' | 'tproxy') => rules(table, c).some((r) => r.target.kind === kind);
  const where = name(rs.family);

  for (const [table, chains] of rs.tables) {
    for (const [from, c] of chains) {
      for (const r of c.rules) {
        if ((r.target.kind === 'jump' || r.target.kind === 'goto') && !chains.has(r.target.chain)) {
          problems.push(`${where} ${table} ${from} jumps to ${r.target.chain}, which does not exist`);
        }
      }
    }
  }
  if (chain('nat', Chain.Output) && !jumps('nat', 'OUTPUT', Chain.Output)) {
    problems.push(`${where} nat OUTPUT does not jump to ${Chain.Output}: outbound traffic is not captured`);
  }
  if (jumps('nat', Chain.Output, Chain.Redirect) && !hasTarget('nat', Chain.Redirect, 'redirect')) {
    problems.push(`${where} nat ${Chain.Redirect} has no REDIRECT rule: captured outbound traffic goes nowhere special`);
  }
  if (rules('nat', Chain.Inbound).some((r) => r.target.kind === 'jump' && r.target.chain === Chain.InRedirect)) {
    if (!jumps('nat', 'PREROUTING', Chain.Inbound)) problems.push(`${where} nat PREROUTING does not jump to ${Chain.Inbound}: inbound traffic is not captured`);
    if (!hasTarget('nat', Chain.InRedirect, 'redirect')) problems.push(`${where} nat ${Chain.InRedirect} has no REDIRECT rule`);
  }
  if (rules('mangle', Chain.Inbound).some((r) => r.target.kind === 'jump' && r.target.chain === Chain.Tproxy)) {
    if (!jumps('mangle', 'PREROUTING', Chain.Inbound)) problems.push(`${where} mangle PREROUTING does not jump to ${Chain.Inbound}: inbound traffic is not captured`);
    if (!hasTarget('mangle', Chain.Tproxy, 'tproxy')) problems.push(`${where} mangle ${Chain.Tproxy} has no TPROXY rule`);
  }
  if (rules('raw', Chain.OutputDns).length > 0 && !jumps('raw', 'OUTPUT', Chain.OutputDns)) {
    problems.push(`${where} raw OUTPUT does not jump to ${Chain.OutputDns}: DNS conntrack zones are not applied`);
  }
  if (rules('nat', Chain.OutputDns).length > 0 && !jumps('nat', Chain.Output, Chain.OutputDns)) {
    problems.push(`${where} nat ${Chain.Output} does not jump to ${Chain.OutputDns}: DNS is not captured`);
  }
  return problems;
}

function tproxyMarkOf(rs: SimRuleset): number | undefined {
  const rule = rs.tables.get('mangle')?.get(Chain.Tproxy)?.rules.find((r) => r.target.kind === 'tproxy');
  return rule?.target.kind === 'tproxy' ? rule.target.mark : undefined;
}

export function analyzeStatus(input: StatusInput): StatusReport {
  const { read, config, ruleset } = input;
  const counts = meshRuleCounts(read);
  const warnings: string[] = [];
  const notes: string[] = [];

  // TPROXY policy routing, whatever the rules say.
  const routing: { family: Family; mark: number; table: string; localRoute: boolean; spec: string }[] = [];
  for (const family of FAMILIES) {
    for (const rule of parseFwmarkRules(read.ipRules[family] ?? '')) {
      const routes = read.routeTables[rule.table]?.[family] ?? '';
      routing.push({ family, mark: rule.mark, table: rule.table, localRoute: isLocalDefaultRoute(routes), spec: rule.spec });
    }
  }
  const fwmarkTables = new Map(routing.filter((r) => r.family === 'ipv4').map((r) => [r.mark, r.table]));

  const backends: BackendStatus[] = SOURCES.map((source) => {
    const meshRules: Partial<Record<Family, number>> = {};
    const foreignRules: Partial<Record<Family, number>> = {};
    let readable = true;
    let problem: string | undefined;
    if (source === 'nftables') {
      readable = read.nftables !== undefined;
      problem = read.nftablesProblem;
      meshRules.ipv4 = counts.nftables;
      let foreign = 0;
      for (const [table, chains] of parseNftListing(read.nftables ?? '')) {
        if (!MESH_NFT_TABLES.includes(table)) for (const c of chains.values()) foreign += c.rules.length;
      }
      foreignRules.ipv4 = foreign;
    } else {
      const ipt = source === 'iptables-legacy' ? read.legacy : read.nft;
      readable = ipt.saves.ipv4 !== undefined;
      problem = ipt.problem;
      for (const family of FAMILIES) {
        const text = ipt.saves[family];
        if (text === undefined) continue;
        const state = parseSave(text);
        meshRules[family] = countMeshRules(state);
        foreignRules[family] = countRules(state) - meshRules[family]!;
      }
    }
    const present = counts[source] > 0;
    const problems: string[] = [];
    let derived: DerivedConfig | undefined;
    if (present) {
      const view = (family: Family) => liveRuleset(read, family, source).ruleset;
      const v4 = view('ipv4');
      const v6 = source === 'nftables' || (meshRules.ipv6 ?? 0) > 0 ? view('ipv6') : undefined;
      const v4Mesh = source === 'nftables' || (meshRules.ipv4 ?? 0) > 0;
      if (v4Mesh) problems.push(...completenessProblems(v4));
      else problems.push('IPv6 has mesh rules but IPv4 has none: the IPv4 capture is missing');
      if (v6) problems.push(...completenessProblems(v6).filter((p) => !problems.includes(p)));
      derived = deriveConfig(v4, v6, fwmarkTables);
      const mark = tproxyMarkOf(v4);
      if (mark !== undefined) {
        for (const family of v6 ? FAMILIES : (['ipv4'] as const)) {
          const route = routing.find((r) => r.family === family && r.mark === mark);
          if (!route) problems.push(`TPROXY mode, but no 'ip ${family === 'ipv4' ? '-4' : '-6'} rule fwmark ${mark} lookup TABLE': TPROXY-ed packets are not delivered to the proxy`);
          else if (!route.localRoute) problems.push(`'ip rule ${route.spec}' exists, but table ${route.table} has no 'local default dev lo' route`);
        }
      }
      if (v6 && source !== 'nftables' && read.loAddresses !== undefined && !hasPassthroughV6(read.loAddresses)) {
        problems.push("IPv6 capture without ::6/128 on lo: the proxy's IPv6 passthrough connections to the app fail");
      }
    }
    return { name: source, readable, ...(problem ? { problem } : {}), meshRules, foreignRules, present, problems, ...(derived ? { derived } : {}) };
  });

  const holding = backends.filter((b) => b.present);
  let active: SourceName | undefined;
  if (config) {
    active = config.nativeNftables ? 'nftables' : config.backend === 'legacy' ? 'iptables-legacy' : config.backend === 'nft' ? 'iptables-nft' : undefined;
  }
  active ??= holding.reduce<BackendStatus | undefined>((best, b) => (!best || counts[b.name] > counts[best.name] ? b : best), undefined)?.name;

  if (holding.length > 1) {
    warnings.push(`mesh rules in ${holding.length === 2 ? 'both backends' : 'several backends'} (${holding.map((b) => b.name).join(', ')}): the kernel runs all of them, so packets are evaluated twice and 'iptables -S' shows only part of the capture; fix: 'meshcap clean' and apply again, or re-run 'meshcap apply' (it keeps one)`);
  }
  if (holding.length === 1) {
    const only = holding[0]!.name;
    if (only === 'iptables-legacy' && read.plainIptables === 'nft') {
      warnings.push("rules exist only in legacy tables; `iptables` (nft) shows nothing: inspect them with 'iptables-legacy-save'");
    } else if (only === 'iptables-nft' && read.plainIptables === 'legacy') {
      warnings.push("rules exist only in nf_tables; `iptables` (legacy) shows nothing: inspect them with 'iptables-nft-save'");
    } else if (only === 'nftables') {
      notes.push("the capture is in native nftables: 'iptables -S' shows nothing; inspect it with 'nft list table inet istio-proxy-nat'");
    }
  }
  for (const b of backends) {
    if (!b.readable && b.problem) notes.push(`${b.name} could not be read: ${b.problem}`);
    const foreign = (b.foreignRules.ipv4 ?? 0) + (b.foreignRules.ipv6 ?? 0);
    if (foreign > 0) notes.push(`${b.name} holds ${foreign} rule${foreign === 1 ? '' : 's'} of other tools (left untouched)`);
  }
  const usesTproxy = holding.some((b) => b.derived?.flags.some(([f, v]) => f === '-m' && v === 'TPROXY'));
  if (!usesTproxy) {
    for (const r of routing.filter((x) => x.localRoute)) warnings.push(`'ip rule ${r.spec}' (TPROXY routing) exists but no TPROXY capture does: a leftover; 'meshcap clean' removes it`);
  }
  const passthroughV6OnLo = read.loAddresses === undefined ? undefined : hasPassthroughV6(read.loAddresses);

  let drift: string[] | undefined;
  if (config && ruleset) {
    drift = [];
    const target = active!;
    for (const other of holding.filter((b) => b.name !== target)) drift.push(`${other.name} holds mesh rules, but the configuration uses ${target}`);
    if (target !== undefined) {
      drift.push(...liveDifferences(ruleset, liveRulesOf(read, target), { unreadable: 'empty' }));
    } else {
      drift.push('no mesh rules in any backend');
    }
    if (config.mode === 'TPROXY' && config.inboundPorts.kind !== 'none') {
      for (const family of config.ipv6.enabled ? FAMILIES : (['ipv4'] as const)) {
        const route = routing.find((r) => r.family === family && r.mark === config.tproxyMark && r.table === String(config.tproxyRouteTable));
        if (!route || !route.localRoute) drift.push(`missing TPROXY routing: ip ${family === 'ipv4' ? '-4' : '-6'} rule fwmark ${config.tproxyMark} lookup ${config.tproxyRouteTable} with 'local default dev lo'`);
      }
    }
  }

  const activeStatus = backends.find((b) => b.name === active);
  let health: Health;
  let summary: string;
  if (holding.length === 0) {
    health = 'absent';
    summary = 'no mesh capture in this namespace: traffic is not captured';
  } else if (holding.length > 1) {
    health = 'conflict';
    summary = `mesh rules in ${holding.map((b) => b.name).join(' and ')}`;
  } else if (activeStatus && activeStatus.problems.length > 0) {
    health = 'incomplete';
    summary = `capture in ${activeStatus.name} is incomplete (${activeStatus.problems.length} problem${activeStatus.problems.length === 1 ? '' : 's'})`;
  } else if (drift && drift.length > 0) {
    health = 'drifted';
    summary = `capture in ${holding[0]!.name} differs from the given configuration (${drift.length} difference${drift.length === 1 ? '' : 's'})`;
  } else {
    health = 'healthy';
    summary = `capture in place in ${holding[0]!.name}, complete${drift ? ', matches the given configuration' : ''}`;
  }
  if (input.roundTrip && activeStatus?.derived?.complete) {
    const differences = input.roundTrip(activeStatus.derived, activeStatus.name);
    if (differences && differences.length === 0) notes.push('the derived flags reproduce the live rules exactly');
    else if (differences) notes.push(`the derived flags are approximate: rebuilding them differs from the live rules in ${differences.length} place${differences.length === 1 ? '' : 's'}`);
  }
  return {
    health,
    summary,
    backends,
    ...(active ? { active } : {}),
    tproxyRouting: routing,
    ...(passthroughV6OnLo !== undefined ? { passthroughV6OnLo } : {}),
    ...(drift ? { drift } : {}),
    warnings,
    notes,
  };
}
