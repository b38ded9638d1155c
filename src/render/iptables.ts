/**
 * Ruleset -> iptables rule arguments and iptables-restore text, spelled exactly
 * as istio-iptables writes them. Pure.
 */
import { BUILTIN_CHAINS, type Family, type Match, type Rule, type Ruleset, TABLE_ORDER, type Table, type Target, rulesForFamily } from '../rules/model.js';

const not = (negate: boolean | undefined) => (negate ? '! ' : '');

export function renderIptablesMatch(match: Match): string | undefined {
  if (match.only === 'nft') return undefined;
  switch (match.kind) {
    case 'inIface':
      return `-i ${match.name}`;
    case 'outIface':
      return `-o ${match.name}`;
    case 'src':
      return `${not(match.negate)}-s ${match.net.text}`;
    case 'dst':
      return `${not(match.negate)}-d ${match.net.text}`;
    case 'proto':
      return `-p ${match.proto}`;
    case 'dport':
      return match.ports.length === 1
        ? `${not(match.negate)}--dport ${match.ports[0]}`
        : `-m multiport ${not(match.negate)}--dports ${match.ports.join(',')}`;
    case 'sport':
      return `--sport ${match.port}`;
    case 'uidOwner':
      return `-m owner ${not(match.negate)}--uid-owner ${match.id}`;
    case 'gidOwner':
      return `-m owner ${not(match.negate)}--gid-owner ${match.id}`;
    case 'ctstate':
      return `-m conntrack --ctstate ${match.states.join(',')}`;
    case 'mark':
      return `-m mark ${not(match.negate)}--mark ${match.mark}`;
    case 'connmark':
      return `-m connmark --mark ${match.mark}`;
  }
}

export function renderIptablesTarget(target: Target): string {
  switch (target.kind) {
    case 'return':
      return '-j RETURN';
    case 'accept':
      return '-j ACCEPT';
    case 'drop':
      return '-j DROP';
    case 'jump':
      return `-j ${target.chain}`;
    case 'redirect':
      return `-j REDIRECT ${target.singular ? '--to-port' : '--to-ports'} ${target.port}`;
    case 'tproxy':
      return `-j TPROXY --tproxy-mark ${target.mark}/0xffffffff --on-port ${target.port}`;
    case 'setMark':
      return `-j MARK --set-mark ${target.mark}`;
    case 'saveMark':
      return '-j CONNMARK --save-mark';
    case 'restoreMark':
      return '-j CONNMARK --restore-mark';
    case 'ctZone':
      return `-j CT --zone ${target.zone}`;
  }
}

/** The rule's arguments after the chain, e.g. `-p tcp --dport 15008 -j RETURN`. */
export function renderIptablesRuleSpec(rule: Rule): string {
  const parts = rule.matches.map(renderIptablesMatch).filter((part): part is string => part !== undefined);
  parts.push(renderIptablesTarget(rule.target));
  return parts.join(' ');
}

/** `-A CHAIN spec` or `-I CHAIN n spec`, as written in restore input. */
export function renderIptablesRuleLine(rule: Rule): string {
  const head = rule.insertAt === undefined ? `-A ${rule.chain}` : `-I ${rule.chain} ${rule.insertAt}`;
  return `${head} ${renderIptablesRuleSpec(rule)}`;
}

/** Non-built-in chains of a table's rules: first as rule chains in order, then as jump targets. */
export function chainsOf(rules: readonly Rule[]): string[] {
  const chains: string[] = [];
  const note = (chain: string) => {
    if (!BUILTIN_CHAINS.has(chain) && !chains.includes(chain)) chains.push(chain);
  };
  for (const rule of rules) note(rule.chain);
  for (const rule of rules) if (rule.target.kind === 'jump') note(rule.target.chain);
  return chains;
}

export function groupByTable(rules: readonly Rule[]): Map<Table, Rule[]> {
  const byTable = new Map<Table, Rule[]>();
  for (const table of TABLE_ORDER) {
    const inTable = rules.filter((rule) => rule.table === table);
    if (inTable.length > 0) byTable.set(table, inTable);
  }
  return byTable;
}

/**
 * Istio's restore input for one family: `* table`, `-N` per chain, the rules,
 * `COMMIT`. Under `--noflush` the `-N` lines fail when a chain exists; the
 * reconciler writes `:CHAIN - [0:0]` declarations instead (see reconcile/).
 */
export function renderIstioRestore(ruleset: Ruleset, family: Family): string[] {
  const lines: string[] = [];
  for (const [table, rules] of groupByTable(rulesForFamily(ruleset, family))) {
    lines.push(`* ${table}`);
    for (const chain of chainsOf(rules)) lines.push(`-N ${chain}`);
    for (const rule of rules) lines.push(renderIptablesRuleLine(rule));
    lines.push('COMMIT');
  }
  return lines;
}
