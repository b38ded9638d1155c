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
import { chainsOf, groupByTable, istioRestoreChunks, renderIptablesRuleLine } from '../render/iptables.js';
import { StreamedText } from '../render/streamed-text.js';
import type { IdResolver } from '../render/iptables-save-form.js';
import { BUILTIN_CHAINS, type Family, type Rule, type Ruleset, TABLE_ORDER, rulesForFamily } from '../rules/model.js';
import type { SavedRule, SaveState } from '../state/iptables-save.js';
import { type StateView, currentView, desiredView, diffViews } from '../state/iptables-view.js';
import { hasMeshState, isMeshChain, isMeshRule, jumpTarget } from '../state/ownership.js';

export interface FamilyPlan {
  readonly family: Family;
  /** Live state already equals the desired one. */
  readonly noop: boolean;
  /** No mesh state at all: Istio's own restore input (with `-N`) is used. */
  readonly fresh: boolean;
  /**
   * iptables-restore --noflush input; empty when noop. A fresh family's is rendered as the
   * restore reads it (StreamedText).
   */
  readonly restoreInput: StreamedText;
  /** What changes, for logs. */
  readonly changes: readonly string[];
  /**
   * The view the family should have, which the read-back compares with; absent for a
   * fresh family, which needs it only for the read-back: the applier renders it while
   * the restore runs (desiredOf).
   */
  readonly desired?: StateView;
  /** Mesh chains kept (flushed) because a foreign chain still jumps to them. */
  readonly keptStaleChains: readonly string[];
}

const NOTHING = StreamedText.of('');
/** A rule line's length in restore input, about (an exclude's is ~36 bytes): sizes a fresh input before it is rendered. */
const BYTES_PER_RULE = 40;

export interface PlanOptions {
  /** --force-apply: rewrite even when the state already matches. */
  readonly force?: boolean;
  readonly resolveId?: IdResolver;
}

export function planFamily(ruleset: Ruleset, family: Family, current: SaveState, options: PlanOptions = {}): FamilyPlan {
  const rules = rulesForFamily(ruleset, family);
  const base = { family, keptStaleChains: [] as string[] };
  if (!hasMeshState(current)) {
    // Nothing of the mesh's is live: what is missing is every desired chain and built-in rule,
    // named without rendering the rules of the mesh's own chains (5000 excludes).
    const differences = diffViews(desiredView(rules, family, options.resolveId, true), new Map());
    if (differences.length === 0 && !options.force) return { ...base, noop: true, fresh: false, restoreInput: NOTHING, changes: [] };
    const restoreInput = StreamedText.rendered(istioRestoreChunks, [ruleset, family], {
      empty: rules.length === 0,
      estimatedLength: rules.length * BYTES_PER_RULE,
    });
    return { ...base, noop: false, fresh: true, restoreInput, changes: differences };
  }
  const desired = desiredView(rules, family, options.resolveId);
  const differences = diffViews(desired, currentView(current));
  if (differences.length === 0 && !options.force) {
    return { ...base, desired, noop: true, fresh: false, restoreInput: NOTHING, changes: [] };
  }
  const { text, keptStaleChains } = reconcileInput(rules, current);
  return { ...base, desired, noop: false, fresh: false, restoreInput: StreamedText.of(text), changes: differences, keptStaleChains };
}

/** The view a plan's family should have: the plan's own, else rendered now. */
export function desiredOf(ruleset: Ruleset, plan: FamilyPlan, resolveId?: IdResolver): StateView {
  return plan.desired ?? desiredView(rulesForFamily(ruleset, plan.family), plan.family, resolveId);
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
        .map((r) => jumpTarget(r.spec))
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
