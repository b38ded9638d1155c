/**
 * When to repair: a pod in a repairable state is repaired in place, unless it
 * has already been repaired `maxRepairs` times within `windowSeconds`. Then
 * something else keeps rewriting its rules, and a third repair would only
 * join the fight: it is reported as foreign-conflict instead, with what that
 * something left behind. Pure (time is passed in).
 */
import { type CaptureState, type PodVerdict, REPAIRABLE } from './types.js';

export interface RepairPolicy {
  readonly windowSeconds: number;
  readonly maxRepairs: number;
}

export const DEFAULT_POLICY: RepairPolicy = { windowSeconds: 600, maxRepairs: 2 };

/** Repair times (ms since the epoch) per sandbox id. */
export type RepairHistory = Map<string, number[]>;

export type Decision =
  | { readonly kind: 'leave' }
  | { readonly kind: 'repair' }
  /** Repaired too often: reported as foreign-conflict, not repaired. */
  | { readonly kind: 'fight'; readonly verdict: PodVerdict };

export function decide(verdict: PodVerdict, sandboxId: string, history: RepairHistory, now: number, policy: RepairPolicy = DEFAULT_POLICY): Decision {
  if (!REPAIRABLE.has(verdict.state)) return { kind: 'leave' };
  const recent = recentRepairs(history, sandboxId, now, policy);
  if (recent.length < policy.maxRepairs) return { kind: 'repair' };
  const resumes = new Date(recent[0]! + policy.windowSeconds * 1000).toISOString();
  return {
    kind: 'fight',
    verdict: {
      state: 'foreign-conflict',
      details: [
        `repaired ${recent.length} times in the last ${policy.windowSeconds} s and ${verdict.state} again: another process keeps rewriting this pod's rules; not repaired again before ${resumes}`,
        ...verdict.details.map((d) => `found: ${d}`),
        ...(verdict.foreignRules?.length
          ? verdict.foreignRules.map((r) => `other tool's rule: ${r}`)
          : ["no other tool's rule is present: the rewriting process removes or replaces the mesh's own rules"]),
      ],
    },
  };
}

export function recentRepairs(history: RepairHistory, sandboxId: string, now: number, policy: RepairPolicy): number[] {
  return (history.get(sandboxId) ?? []).filter((t) => now - t < policy.windowSeconds * 1000).sort((a, b) => a - b);
}

export function recordRepair(history: RepairHistory, sandboxId: string, now: number, policy: RepairPolicy): void {
  history.set(sandboxId, [...recentRepairs(history, sandboxId, now, policy), now]);
}

/** Forgets sandboxes that are gone and repairs older than the window. */
export function pruneHistory(history: RepairHistory, live: ReadonlySet<string>, now: number, policy: RepairPolicy): void {
  for (const id of [...history.keys()]) {
    const recent = recentRepairs(history, id, now, policy);
    if (!live.has(id) || recent.length === 0) history.delete(id);
    else history.set(id, recent);
  }
}

export function historyToJson(history: RepairHistory): string {
  return `${JSON.stringify({ repairs: Object.fromEntries(history) })}\n`;
}

/** A history file that cannot be parsed is treated as empty: losing it only means the fight is detected later. */
export function historyFromJson(text: string | undefined): RepairHistory {
  const history: RepairHistory = new Map();
  if (text === undefined) return history;
  try {
    const value = JSON.parse(text) as { repairs?: Record<string, unknown> };
    for (const [id, times] of Object.entries(value.repairs ?? {})) {
      if (Array.isArray(times)) history.set(id, times.filter((t): t is number => typeof t === 'number' && Number.isFinite(t)));
    }
  } catch {
    // fall through: empty
  }
  return history;
}

export function isRepairable(state: CaptureState): boolean {
  return REPAIRABLE.has(state);
}
