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
  // Concatenated, not mapped and joined: this runs once per rule of a 5000-exclude ruleset, on a cold start.
  let spec = '';
  const matches = rule.matches;
  for (let i = 0; i < matches.length; i++) {
    const part = renderIptablesMatch(matches[i]!);
    if (part !== undefined) spec += `${part} `;
  }
  return spec + renderIptablesTarget(rule.target);
}

/** `-A CHAIN spec` or `-I CHAIN n spec`, as written in restore input. */
export function renderIptablesRuleLine(rule: Rule): string {
  return `${rule.insertAt === undefined ? `-A ${rule.chain}` : `-I ${rule.chain} ${rule.insertAt}`} ${renderIptablesRuleSpec(rule)}`;
}

/** Non-built-in chains of a table's rules: first as rule chains in order, then as jump targets. */
export function chainsOf(rules: readonly Rule[]): string[] {
  const chains = new Set<string>();
  for (const rule of rules) if (!BUILTIN_CHAINS.has(rule.chain)) chains.add(rule.chain);
  for (const rule of rules) if (rule.target.kind === 'jump' && !BUILTIN_CHAINS.has(rule.target.chain)) chains.add(rule.target.chain);
  return [...chains];
}

/** The rules of each table, tables in TABLE_ORDER, rules in order; one pass. */
export function groupByTable(rules: readonly Rule[]): Map<Table, Rule[]> {
  const found = new Map<Table, Rule[]>();
  for (const rule of rules) {
    const inTable = found.get(rule.table);
    if (inTable) inTable.push(rule);
    else found.set(rule.table, [rule]);
  }
  const byTable = new Map<Table, Rule[]>();
  for (const table of TABLE_ORDER) if (found.has(table)) byTable.set(table, found.get(table)!);
  return byTable;
}

/** Rules per chunk of a streamed restore input (~8 KB of excludes): a pipe holds 64 KB. */
const RULES_PER_CHUNK = 256;

/**
 * Istio's restore input for one family: `* table`, `-N` per chain, the rules,
 * `COMMIT`, in chunks that each end with a newline (StreamedText). Under `--noflush`
 * the `-N` lines fail when a chain exists; the reconciler writes `:CHAIN - [0:0]`
 * declarations instead (see reconcile/).
 */
export function* istioRestoreChunks(ruleset: Ruleset, family: Family): Generator<string> {
  for (const [table, rules] of groupByTable(rulesForFamily(ruleset, family))) {
    let chunk = `* ${table}\n`;
    for (const chain of chainsOf(rules)) chunk += `-N ${chain}\n`;
    for (let i = 0; i < rules.length; i++) {
      chunk += `${renderIptablesRuleLine(rules[i]!)}\n`;
      if ((i + 1) % RULES_PER_CHUNK === 0) {
        yield chunk;
        chunk = '';
      }
    }
    yield `${chunk}COMMIT\n`;
  }
}

/** Istio's restore input for one family, as lines. */
export function renderIstioRestore(ruleset: Ruleset, family: Family): string[] {
  const text = [...istioRestoreChunks(ruleset, family)].join('');
  return text === '' ? [] : text.slice(0, -1).split('\n');
}
