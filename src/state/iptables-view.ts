/**
 * The mesh's part of a saved iptables state as a comparable view, the view a
 * ruleset should produce, and the differences between two views, one line
 * each. Pure. Reconcile plans from these; verify and status report them.
 */
import { type IdResolver, numericIds, renderSaveSpec } from '../render/iptables-save-form.js';
import { BUILTIN_CHAINS, type Family, type Rule, TABLE_ORDER } from '../rules/model.js';
import type { SaveState } from './iptables-save.js';
import { isMeshChain, isMeshRule } from './ownership.js';

/** The mesh's part of one table: its own chains, and its rules in built-in chains, in order. */
export interface TableView {
  readonly meshChains: ReadonlyMap<string, readonly string[]>;
  readonly builtinRules: ReadonlyMap<string, readonly string[]>;
}

export type StateView = ReadonlyMap<string, TableView>;

/**
 * The desired view: rules in save form, with `-I n` positions resolved among the mesh's own rules.
 * `chainsOnly`: the mesh's own chains are named but their rules not rendered (built-in chains'
 * rules are): enough to tell what a state without any mesh chain lacks.
 */
export function desiredView(rules: readonly Rule[], family: Family, resolveId: IdResolver = numericIds, chainsOnly = false): StateView {
  const view = new Map<string, { meshChains: Map<string, string[]>; builtinRules: Map<string, string[]> }>();
  for (const rule of rules) {
    let table = view.get(rule.table);
    if (!table) {
      table = { meshChains: new Map(), builtinRules: new Map() };
      view.set(rule.table, table);
    }
    const builtin = BUILTIN_CHAINS.has(rule.chain);
    const target = builtin ? table.builtinRules : table.meshChains;
    const list = target.get(rule.chain) ?? [];
    target.set(rule.chain, list);
    if (builtin || !chainsOnly) {
      const spec = renderSaveSpec(rule, family, resolveId);
      if (rule.insertAt === undefined) list.push(spec);
      else list.splice(Math.min(rule.insertAt - 1, list.length), 0, spec);
    }
    // Jump targets exist even when empty (iptables would refuse the jump otherwise).
    if (rule.target.kind === 'jump' && !BUILTIN_CHAINS.has(rule.target.chain) && !table.meshChains.has(rule.target.chain)) {
      table.meshChains.set(rule.target.chain, []);
    }
  }
  return view;
}

export function currentView(state: SaveState): StateView {
  const view = new Map<string, TableView>();
  for (const table of state.values()) {
    const meshChains = new Map<string, string[]>();
    const builtinRules = new Map<string, string[]>();
    for (const chain of table.chains) if (isMeshChain(chain)) meshChains.set(chain, []);
    for (const rule of table.rules) {
      if (isMeshChain(rule.chain)) {
        (meshChains.get(rule.chain) ?? meshChains.set(rule.chain, []).get(rule.chain)!).push(rule.spec);
      } else if (BUILTIN_CHAINS.has(rule.chain) && isMeshRule(table.name, rule)) {
        (builtinRules.get(rule.chain) ?? builtinRules.set(rule.chain, []).get(rule.chain)!).push(rule.spec);
      }
    }
    if (meshChains.size > 0 || builtinRules.size > 0) view.set(table.name, { meshChains, builtinRules });
  }
  return view;
}

/** Differences between two views, one line each; empty when they are equal. */
export function diffViews(desired: StateView, current: StateView): string[] {
  const lines: string[] = [];
  const tables = new Set([...desired.keys(), ...current.keys()]);
  for (const table of TABLE_ORDER.filter((t) => tables.has(t))) {
    const want = desired.get(table);
    const have = current.get(table);
    const compare = (kind: 'chain' | 'built-in chain', wantMap?: ReadonlyMap<string, readonly string[]>, haveMap?: ReadonlyMap<string, readonly string[]>) => {
      const chains = new Set([...(wantMap?.keys() ?? []), ...(haveMap?.keys() ?? [])]);
      for (const chain of chains) {
        const w = wantMap?.get(chain);
        const h = haveMap?.get(chain);
        if (kind === 'chain' && w && !h) {
          lines.push(`${table}: chain ${chain} is missing`);
          continue;
        }
        if (kind === 'chain' && h && !w) {
          lines.push(`${table}: chain ${chain} should not exist`);
          continue;
        }
        const wl = w ?? [];
        const hl = h ?? [];
        if (wl.length === hl.length && wl.every((spec, i) => spec === hl[i])) continue;
        // Sets, not includes(): a changed list of 5000 excludes must not compare 5000 x 5000.
        const wanted = new Set(wl);
        const present = new Set(hl);
        for (const spec of wl.filter((s) => !present.has(s))) lines.push(`${table}: ${chain}: missing   -A ${chain} ${spec}`);
        for (const spec of hl.filter((s) => !wanted.has(s))) lines.push(`${table}: ${chain}: unexpected -A ${chain} ${spec}`);
        if (wl.filter((s) => present.has(s)).join('\n') !== hl.filter((s) => wanted.has(s)).join('\n') || wl.length !== hl.length) {
          if (!lines.some((l) => l.startsWith(`${table}: ${chain}:`))) lines.push(`${table}: ${chain}: rules are in the wrong order or duplicated`);
        }
      }
    };
    compare('chain', want?.meshChains, have?.meshChains);
    compare('built-in chain', want?.builtinRules, have?.builtinRules);
  }
  return lines;
}
