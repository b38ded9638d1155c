/**
 * Ruleset -> the native nftables transaction, as Istio's istio-nftables writes
 * it: three `inet` tables, each added, flushed, its chains declared, then its
 * rules. `nft -f -` applies the whole text atomically. Pure.
 */
import { Builtin, NftTable } from '../rules/constants.js';
import { type Cidr, formatCidr, maskCidr } from '../net/ip.js';
import type { Match, Rule, Ruleset, Table, Target } from '../rules/model.js';

type NftTableName = (typeof NftTable)[keyof typeof NftTable];

export interface ChainDecl {
  readonly name: string;
  /** Base-chain spec, e.g. `type nat hook output priority -100`. */
  readonly base?: string;
}

/** Istio declares a fixed chain list per table, keeping those that got rules, in this order. */
const CHAIN_DECLS: Record<'nat' | 'mangle' | 'raw', readonly ChainDecl[]> = {
  nat: [
    { name: 'prerouting', base: 'type nat hook prerouting priority -100' },
    { name: 'output', base: 'type nat hook output priority -100' },
    { name: 'istio-inbound' },
    { name: 'istio-redirect' },
    { name: 'istio-in-redirect' },
    { name: 'istio-output' },
    { name: 'istio-output-dns' },
  ],
  mangle: [
    { name: 'prerouting', base: 'type filter hook prerouting priority -150' },
    { name: 'output', base: 'type route hook output priority -150' },
    { name: 'istio-divert' },
    { name: 'istio-tproxy' },
    { name: 'istio-inbound' },
    { name: 'istio-drop' },
  ],
  raw: [
    { name: 'prerouting', base: 'type filter hook prerouting priority -300' },
    { name: 'output', base: 'type filter hook output priority -300' },
    { name: 'istio-inbound' },
    { name: 'istio-output-dns' },
  ],
};

export const NFT_TABLES: readonly ('nat' | 'mangle' | 'raw')[] = ['nat', 'mangle', 'raw'];

export function nftTableName(table: Table): NftTableName {
  if (table === 'filter') throw new Error('internal: the capture has no filter-table rules');
  return NftTable[table];
}

const chainNames = new Map<string, string>();

/** PREROUTING -> prerouting, ISTIO_IN_REDIRECT -> istio-in-redirect. */
export function nftChainName(chain: string): string {
  if (chain === Builtin.Prerouting) return 'prerouting';
  if (chain === Builtin.Output) return 'output';
  // A handful of names, asked for once per rule.
  let name = chainNames.get(chain);
  if (name === undefined) chainNames.set(chain, (name = chain.toLowerCase().replaceAll('_', '-')));
  return name;
}

/**
 * Istio's nft builder writes matches in this order: interface, protocol, conntrack
 * state, address, port, mark, owner. Its raw-table DNS rules put the port first.
 */
function rank(match: Match, table: Table): number {
  switch (match.kind) {
    case 'inIface':
    case 'outIface':
      return 0;
    case 'proto':
      return 1;
    case 'ctstate':
      return 2;
    case 'src':
    case 'dst':
      return table === 'raw' ? 4.5 : 3;
    case 'dport':
    case 'sport':
      return 4;
    case 'mark':
    case 'connmark':
      return 5;
    case 'uidOwner':
    case 'gidOwner':
      return 6;
  }
}

const neq = (negate: boolean | undefined) => (negate ? '!= ' : '');

function renderMatch(match: Match, table: Table): string | undefined {
  if (match.only === 'iptables') return undefined;
  switch (match.kind) {
    case 'inIface':
      return `iifname ${match.name}`;
    case 'outIface':
      return `oifname ${match.name}`;
    case 'src':
    case 'dst': {
      const family = match.net.cidr.addr.family === 4 ? 'ip' : 'ip6';
      return `${family} ${match.kind === 'src' ? 'saddr' : 'daddr'} ${neq(match.negate)}${match.net.text}`;
    }
    case 'proto':
      return `meta l4proto ${match.proto}`;
    case 'dport': {
      const ports = match.ports.length === 1 ? String(match.ports[0]) : `{ ${match.ports.join(', ')} }`;
      return `${match.proto} dport ${neq(match.negate)}${ports}`;
    }
    case 'sport':
      return `${match.proto} sport ${match.port}`;
    case 'uidOwner':
    case 'gidOwner': {
      // Istio spells the raw-table owner matches with the explicit `meta` keyword.
      const key = `${table === 'raw' ? 'meta ' : ''}${match.kind === 'uidOwner' ? 'skuid' : 'skgid'}`;
      return `${key} ${neq(match.negate)}${match.id}`;
    }
    case 'ctstate':
      return `ct state ${match.states.map((state) => state.toLowerCase()).join(',')}`;
    case 'mark':
      return `mark ${neq(match.negate)}${match.mark}`;
    case 'connmark':
      return `ct mark ${match.mark}`;
  }
}

function renderTarget(target: Target, rule: Rule): string {
  switch (target.kind) {
    case 'return':
      return 'counter return';
    case 'accept':
      return 'counter accept';
    case 'drop':
      return 'counter drop';
    case 'jump':
      return `counter jump ${nftChainName(target.chain)}`;
    case 'redirect':
      return `counter redirect to :${target.port}`;
    case 'tproxy':
      return `tproxy ${rule.family === 'ipv6' ? 'ip6' : 'ip'} to :${target.port} meta mark set ${target.mark} counter accept`;
    case 'setMark':
      return `counter meta mark set ${target.mark}`;
    case 'saveMark':
      return 'counter ct mark set mark';
    case 'restoreMark':
      return 'counter meta mark set ct mark';
    case 'ctZone':
      return `counter ct zone set ${target.zone}`;
  }
}

/** The rule body after the chain name: matches in nft order, counter, verdict. */
export function renderNftRuleBody(rule: Rule): string {
  // A single match (every exclude rule) needs no ordering.
  if (rule.matches.length <= 1) {
    const first = rule.matches[0] && renderMatch(rule.matches[0], rule.table);
    const verdict = renderTarget(rule.target, rule);
    return first === undefined ? verdict : `${first} ${verdict}`;
  }
  const ordered = rule.matches
    .map((match, index) => ({ match, index }))
    .sort((a, b) => rank(a.match, rule.table) - rank(b.match, rule.table) || a.index - b.index);
  const parts = ordered.map(({ match }) => renderMatch(match, rule.table)).filter((p): p is string => p !== undefined);
  parts.push(renderTarget(rule.target, rule));
  return parts.join(' ');
}

export interface NftRuleOp {
  readonly chain: string;
  /** Insert position (already converted: an index past the end became an append). */
  readonly index?: number;
  readonly body: string;
}

/** A named set of a table (--cidr-sets): excluded destinations or ports. */
export interface NftSetDecl {
  readonly name: string;
  readonly type: 'ipv4_addr' | 'ipv6_addr' | 'inet_service';
  /** Prefixes need an interval set; ports are plain elements. */
  readonly interval: boolean;
  readonly elements: readonly string[];
}

export interface NftTableOps {
  readonly table: 'nat' | 'mangle' | 'raw';
  readonly name: string;
  readonly chains: readonly ChainDecl[];
  readonly sets: readonly NftSetDecl[];
  readonly rules: readonly NftRuleOp[];
}

type Body = { rule: Rule; chain: string; body: string };

/** What a rule contributes to a set: a plain `-d CIDR -j RETURN` or `--dport N -j RETURN`. */
function setMember(rule: Rule): { kind: 'v4' | 'v6' | 'ports'; proto?: 'tcp' | 'udp'; element: string; cidr?: Cidr } | undefined {
  if (rule.target.kind !== 'return' || rule.insertAt !== undefined) return undefined;
  const matches = rule.matches.filter((match) => match.only !== 'iptables');
  if (matches.length !== 1) return undefined;
  const match = matches[0]!;
  if (match.kind === 'dst' && !match.negate) {
    const masked = maskCidr(match.net.cidr);
    return { kind: masked.addr.family === 4 ? 'v4' : 'v6', element: formatCidr(masked), cidr: masked };
  }
  if (match.kind === 'dport' && !match.negate && match.ports.length === 1) return { kind: 'ports', proto: match.proto, element: String(match.ports[0]) };
  return undefined;
}

const SET_TYPES = { v4: 'ipv4_addr', v6: 'ipv6_addr', ports: 'inet_service' } as const;
const SET_NAMES = { v4: 'istio-exclude-v4', v6: 'istio-exclude-v6', ports: 'istio-exclude-ports' } as const;

/** Drops prefixes inside another one of the list: an interval set refuses overlaps, and the union is the same. */
function outermostPrefixes(cidrs: readonly Cidr[]): Cidr[] {
  const value = (bytes: readonly number[]) => bytes.reduce((acc, byte) => (acc << 8n) | BigInt(byte), 0n);
  const spans = cidrs.map((cidr) => {
    const bits = BigInt(cidr.addr.bytes.length * 8);
    const start = value(cidr.addr.bytes);
    return { cidr, start, end: start + (1n << (bits - BigInt(cidr.prefix))) - 1n };
  });
  spans.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : a.cidr.prefix - b.cidr.prefix));
  const kept: Cidr[] = [];
  let end = -1n;
  for (const span of spans) {
    if (span.start <= end) continue;
    kept.push(span.cidr);
    end = span.end;
  }
  return kept;
}

/**
 * --cidr-sets: in a run of consecutive RETURN rules of a chain their order does not
 * matter (a packet matching any of them returns), so the run's excluded destinations
 * of each family, and its excluded ports, become one set lookup each, placed where
 * the first of them was. A kind with a single entry in the run stays a rule. Chains
 * with positioned inserts are left alone.
 */
function collapseIntoSets(bodies: readonly Body[]): { bodies: Body[]; sets: NftSetDecl[] } {
  const positioned = new Set(bodies.filter((b) => (b.rule.insertAt ?? 1) > 1).map((b) => b.chain));
  type Group = { kind: 'v4' | 'v6' | 'ports'; elements: Set<string>; cidrs: Cidr[]; lookups: Set<string>; name?: string };
  // Pass 1: the group (run and kind) of each body.
  const groups: Group[] = [];
  const groupOf: (Group | undefined)[] = [];
  const open = new Map<string, Map<string, Group>>();
  for (const body of bodies) {
    const member = positioned.has(body.chain) ? undefined : setMember(body.rule);
    if (!member) {
      open.delete(body.chain);
      groupOf.push(undefined);
      continue;
    }
    let run = open.get(body.chain);
    if (!run) open.set(body.chain, (run = new Map()));
    let group = run.get(member.kind);
    if (!group) {
      group = { kind: member.kind, elements: new Set(), cidrs: [], lookups: new Set() };
      run.set(member.kind, group);
      groups.push(group);
    }
    if (!group.elements.has(member.element)) {
      group.elements.add(member.element);
      if (member.cidr) group.cidrs.push(member.cidr);
    }
    groupOf.push(group);
  }
  // Pass 2: groups of two or more entries become sets.
  const sets: NftSetDecl[] = [];
  const used = new Map<string, number>();
  for (const group of groups) {
    if (group.elements.size < 2) continue;
    const n = (used.get(group.kind) ?? 0) + 1;
    used.set(group.kind, n);
    group.name = n === 1 ? SET_NAMES[group.kind] : `${SET_NAMES[group.kind]}-${n}`;
    const elements = group.kind === 'ports' ? [...group.elements] : outermostPrefixes(group.cidrs).map(formatCidr);
    sets.push({ name: group.name, type: SET_TYPES[group.kind], interval: group.kind !== 'ports', elements });
  }
  // Pass 3: a set's members give way to one lookup per protocol (ports) or one (addresses).
  const out: Body[] = [];
  for (const [i, body] of bodies.entries()) {
    const group = groupOf[i];
    if (!group?.name) {
      out.push(body);
      continue;
    }
    const member = setMember(body.rule)!;
    const lookup = member.kind === 'ports' ? `${member.proto!} dport` : member.kind === 'v4' ? 'ip daddr' : 'ip6 daddr';
    if (group.lookups.has(lookup)) continue;
    group.lookups.add(lookup);
    out.push({ rule: body.rule, chain: body.chain, body: `${lookup} @${group.name} counter return` });
  }
  return { bodies: out, sets };
}

const FAMILY_BIT: Record<Rule['family'], number> = { ipv4: 1, ipv6: 2, both: 4 };

export function nftTableOps(ruleset: Ruleset): NftTableOps[] {
  const result: NftTableOps[] = [];
  const byTable = rulesByNftTable(ruleset);
  for (const table of NFT_TABLES) {
    const rules = byTable[table];
    // In an inet table a family-scoped rule without an address matches both families; Istio
    // writes such a rule once even where iptables needs one per family (the raw DNS jump).
    // A rule with an address is never such a twin (its body names ip or ip6), so the 5000
    // excludes of a long list are neither looked up nor remembered.
    const bodies: { rule: Rule; chain: string; body: string }[] = [];
    // Per chain and body, the families written so far (bits of FAMILY_BIT).
    const written = new Map<string, number>();
    for (const rule of rules) {
      const chain = nftChainName(rule.chain);
      const body = renderNftRuleBody(rule);
      if (hasAddress(rule)) {
        bodies.push({ rule, chain, body });
        continue;
      }
      const key = `${chain} ${body}`;
      const families = written.get(key);
      const bit = FAMILY_BIT[rule.family];
      const twin = rule.family !== 'both' && families !== undefined && (families & ~bit) !== 0;
      if (twin) continue;
      bodies.push({ rule, chain, body });
      written.set(key, (families ?? 0) | bit);
    }
    if (bodies.length === 0) continue;
    const collapsed = ruleset.nftSets ? collapseIntoSets(bodies) : { bodies, sets: [] };
    const counts = new Map<string, number>();
    const ops: NftRuleOp[] = [];
    for (const { rule, chain, body } of collapsed.bodies) {
      const count = counts.get(chain) ?? 0;
      const index = rule.insertAt === undefined ? undefined : rule.insertAt - 1;
      // nft refuses an index at or past the end of the chain: that is an append.
      ops.push(index !== undefined && index < count ? { chain, index, body } : { chain, body });
      counts.set(chain, count + 1);
    }
    result.push({
      table,
      name: NftTable[table],
      chains: CHAIN_DECLS[table].filter((decl) => counts.has(decl.name)),
      sets: collapsed.sets,
      rules: ops,
    });
  }
  return result;
}

/** The rules of each nft table, in order, IPv6 ones only when IPv6 is on; one pass. */
function rulesByNftTable(ruleset: Ruleset): Record<'nat' | 'mangle' | 'raw', Rule[]> {
  const byTable: Record<'nat' | 'mangle' | 'raw', Rule[]> = { nat: [], mangle: [], raw: [] };
  for (const rule of ruleset.rules) {
    if (rule.table !== 'filter' && (rule.family !== 'ipv6' || ruleset.ipv6)) byTable[rule.table].push(rule);
  }
  return byTable;
}

function hasAddress(rule: Rule): boolean {
  // Indexed: a for-of allocates an iterator per call, and this runs once per rule on a cold start.
  const matches = rule.matches;
  for (let i = 0; i < matches.length; i++) {
    const match = matches[i]!;
    if ((match.kind === 'src' || match.kind === 'dst') && match.only !== 'iptables') return true;
  }
  return false;
}

export function renderChainDecl(table: string, decl: ChainDecl): string {
  return `add chain inet ${table} ${decl.name}${decl.base ? ` { ${decl.base} ; }` : ''}`;
}

/** Declares a set, empties it (it may exist from a previous run) and fills it. */
export function renderSetDecl(table: string, set: NftSetDecl): string[] {
  return [
    `add set inet ${table} ${set.name} { type ${set.type} ;${set.interval ? ' flags interval ;' : ''} }`,
    `flush set inet ${table} ${set.name}`,
    ...(set.elements.length > 0 ? [`add element inet ${table} ${set.name} { ${set.elements.join(', ')} }`] : []),
  ];
}

export function renderRuleOp(table: string, op: NftRuleOp): string {
  return op.index === undefined
    ? `add rule inet ${table} ${op.chain} ${op.body}`
    : `insert rule inet ${table} ${op.chain} index ${op.index} ${op.body}`;
}

/** The transaction lines for applying the ruleset (Istio's nftables golden format). */
export function renderNftTransaction(ruleset: Ruleset): string[] {
  return nftTableOps(ruleset).flatMap((ops) => [
    `add table inet ${ops.name}`,
    `flush table inet ${ops.name}`,
    ...ops.chains.map((decl) => renderChainDecl(ops.name, decl)),
    ...ops.sets.flatMap((set) => renderSetDecl(ops.name, set)),
    ...ops.rules.map((op) => renderRuleOp(ops.name, op)),
  ]);
}

/** Removes mesh tables (all three by default); `add` first so the delete cannot fail on a missing table. */
export function renderNftCleanup(names: readonly string[] = NFT_TABLES.map((table) => NftTable[table])): string[] {
  return names.flatMap((name) => [`add table inet ${name}`, `delete table inet ${name}`]);
}
