/**
 * Desired ruleset vs live state -> one iptables-restore input per family that
 * reconciles any prior state in a single commit per table. Pure.
 *
 * The input declares every mesh chain with `:CHAIN - [0:0]` (creates it, or
 * flushes it under --noflush), deletes the mesh rules found in built-in chains,
 * deletes mesh chains the config no longer has, then adds the desired rules.
 * A table either commits whole or not at all, so there is no moment without
 * capture and nothing to clean up if the process dies.
 */
import type { SavedRule, SaveState } from '../backend/save.js';
import { chainsOf, groupByTable, renderIptablesRuleLine, renderIstioRestore } from '../render/iptables.js';
import { type IdResolver, numericIds, renderSaveSpec } from '../render/iptables-save-form.js';
import { BUILTIN_CHAINS, type Family, type Rule, type Ruleset, TABLE_ORDER, type Table, rulesForFamily } from '../rules/model.js';
import { hasMeshState, isMeshChain, isMeshRule } from './mesh.js';

/** The mesh's part of one table: its own chains, and its rules in built-in chains, in order. */
export interface TableView {
  readonly meshChains: ReadonlyMap<string, readonly string[]>;
  readonly builtinRules: ReadonlyMap<string, readonly string[]>;
}

export type StateView = ReadonlyMap<string, TableView>;

export interface FamilyPlan {
  readonly family: Family;
  /** Live state already equals the desired one. */
  readonly noop: boolean;
  /** No mesh state at all: Istio's own restore input (with `-N`) is used. */
  readonly fresh: boolean;
  /** iptables-restore --noflush input; empty when noop. */
  readonly restoreInput: string;
  /** What changes, for logs. */
  readonly changes: readonly string[];
  readonly desired: StateView;
  /** Mesh chains kept (flushed) because a foreign chain still jumps to them. */
  readonly keptStaleChains: readonly string[];
}

/** The desired view: rules in save form, with `-I n` positions resolved among the mesh's own rules. */
export function desiredView(rules: readonly Rule[], family: Family, resolveId: IdResolver = numericIds): StateView {
  const view = new Map<string, { meshChains: Map<string, string[]>; builtinRules: Map<string, string[]> }>();
  for (const rule of rules) {
    let table = view.get(rule.table);
    if (!table) {
      table = { meshChains: new Map(), builtinRules: new Map() };
      view.set(rule.table, table);
    }
    const target = BUILTIN_CHAINS.has(rule.chain) ? table.builtinRules : table.meshChains;
    const list = target.get(rule.chain) ?? [];
    target.set(rule.chain, list);
    const spec = renderSaveSpec(rule, family, resolveId);
    if (rule.insertAt === undefined) list.push(spec);
    else list.splice(Math.min(rule.insertAt - 1, list.length), 0, spec);
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
        for (const spec of wl.filter((s) => !hl.includes(s))) lines.push(`${table}: ${chain}: missing   -A ${chain} ${spec}`);
        for (const spec of hl.filter((s) => !wl.includes(s))) lines.push(`${table}: ${chain}: unexpected -A ${chain} ${spec}`);
        if (wl.filter((s) => hl.includes(s)).join('\n') !== hl.filter((s) => wl.includes(s)).join('\n') || wl.length !== hl.length) {
          if (!lines.some((l) => l.startsWith(`${table}: ${chain}:`))) lines.push(`${table}: ${chain}: rules are in the wrong order or duplicated`);
        }
      }
    };
    compare('chain', want?.meshChains, have?.meshChains);
    compare('built-in chain', want?.builtinRules, have?.builtinRules);
  }
  return lines;
}

export interface PlanOptions {
  /** --force-apply: rewrite even when the state already matches. */
  readonly force?: boolean;
  readonly resolveId?: IdResolver;
}

export function planFamily(ruleset: Ruleset, family: Family, current: SaveState, options: PlanOptions = {}): FamilyPlan {
  const rules = rulesForFamily(ruleset, family);
  const desired = desiredView(rules, family, options.resolveId);
  const live = currentView(current);
  const differences = diffViews(desired, live);
  const base = { family, desired, keptStaleChains: [] as string[] };
  if (differences.length === 0 && !options.force) {
    return { ...base, noop: true, fresh: false, restoreInput: '', changes: [] };
  }
  if (!hasMeshState(current)) {
    const lines = renderIstioRestore(ruleset, family);
    return { ...base, noop: false, fresh: true, restoreInput: lines.length ? `${lines.join('\n')}\n` : '', changes: differences };
  }
  const { text, keptStaleChains } = reconcileInput(rules, current);
  return { ...base, noop: false, fresh: false, restoreInput: text, changes: differences, keptStaleChains };
}

function reconcileInput(rules: readonly Rule[], current: SaveState): { text: string; keptStaleChains: string[] } {
  const desiredByTable = groupByTable(rules);
  const lines: string[] = [];
  const keptStaleChains: string[] = [];
  for (const table of TABLE_ORDER) {
    const want = desiredByTable.get(table) ?? [];
    const saved = current.get(table);
    const liveChains = saved?.chains.filter(isMeshChain) ?? [];
    const liveBuiltin: SavedRule[] = saved?.rules.filter((r) => BUILTIN_CHAINS.has(r.chain) && isMeshRule(table, r)) ?? [];
    if (want.length === 0 && liveChains.length === 0 && liveBuiltin.length === 0) continue;

    const wantChains = chainsOf(want);
    const stale = liveChains.filter((chain) => !wantChains.includes(chain));
    // A foreign chain jumping into a stale mesh chain would make `-X` fail the whole commit.
    const referenced = new Set(
      (saved?.rules ?? [])
        .filter((r) => !BUILTIN_CHAINS.has(r.chain) && !isMeshChain(r.chain))
        .map((r) => / -[jg] (\S+)/.exec(` ${r.spec}`)?.[1])
        .filter((c): c is string => c !== undefined),
    );
    lines.push(`*${table}`);
    for (const chain of [...wantChains, ...stale]) lines.push(`:${chain} - [0:0]`);
    for (const rule of liveBuiltin) lines.push(`-D ${rule.chain} ${rule.spec}`);
    for (const chain of stale) {
      if (referenced.has(chain)) keptStaleChains.push(`${table}/${chain}`);
      else lines.push(`-X ${chain}`);
    }
    for (const rule of want) lines.push(renderIptablesRuleLine(rule));
    lines.push('COMMIT');
  }
  return { text: lines.length ? `${lines.join('\n')}\n` : '', keptStaleChains };
}

/** Input that removes every mesh rule and chain from a state (clean, and the other backend). */
export function cleanupInput(current: SaveState): string {
  return reconcileInput([], current).text;
}
