/**
 * Ruleset -> the native nftables transaction, as Istio's istio-nftables writes
 * it: three `inet` tables, each added, flushed, its chains declared, then its
 * rules. `nft -f -` applies the whole text atomically. Pure.
 */
import { Builtin, Chain, NftTable } from '../rules/constants.js';
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

/** PREROUTING -> prerouting, ISTIO_IN_REDIRECT -> istio-in-redirect. */
export function nftChainName(chain: string): string {
  if (chain === Builtin.Prerouting) return 'prerouting';
  if (chain === Builtin.Output) return 'output';
  return chain.toLowerCase().replaceAll('_', '-');
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

export interface NftTableOps {
  readonly table: 'nat' | 'mangle' | 'raw';
  readonly name: string;
  readonly chains: readonly ChainDecl[];
  readonly rules: readonly NftRuleOp[];
}

/** The transaction as data: per table, the chains that get rules and the rule operations in order. */
export function nftTableOps(ruleset: Ruleset): NftTableOps[] {
  const result: NftTableOps[] = [];
  for (const table of NFT_TABLES) {
    const rules = ruleset.rules.filter((rule) => rule.table === table && (rule.family !== 'ipv6' || ruleset.ipv6));
    // In an inet table a family-scoped rule without an address matches both families; Istio
    // writes such a rule once even where iptables needs one per family (the raw DNS jump).
    const bodies: { rule: Rule; chain: string; body: string }[] = [];
    for (const rule of rules) {
      const chain = nftChainName(rule.chain);
      const body = renderNftRuleBody(rule);
      const twin = rule.family !== 'both' && bodies.some((b) => b.chain === chain && b.body === body && b.rule.family !== rule.family);
      if (!twin) bodies.push({ rule, chain, body });
    }
    if (bodies.length === 0) continue;
    const counts = new Map<string, number>();
    const ops: NftRuleOp[] = [];
    for (const { rule, chain, body } of bodies) {
      const count = counts.get(chain) ?? 0;
      const index = rule.insertAt === undefined ? undefined : rule.insertAt - 1;
      // nft refuses an index at or past the end of the chain: that is an append.
      ops.push(index !== undefined && index < count ? { chain, index, body } : { chain, body });
      counts.set(chain, count + 1);
    }
    result.push({
      table,
      name: NftTable[table],
      chains: CHAIN_DECLS[table].filter((decl) => ops.some((op) => op.chain === decl.name)),
      rules: ops,
    });
  }
  return result;
}

export function renderChainDecl(table: string, decl: ChainDecl): string {
  return `add chain inet ${table} ${decl.name}${decl.base ? ` { ${decl.base} ; }` : ''}`;
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
    ...ops.rules.map((op) => renderRuleOp(ops.name, op)),
  ]);
}

/** Removes mesh tables (all three by default); `add` first so the delete cannot fail on a missing table. */
export function renderNftCleanup(names: readonly string[] = NFT_TABLES.map((table) => NftTable[table])): string[] {
  return names.flatMap((name) => [`add table inet ${name}`, `delete table inet ${name}`]);
}
