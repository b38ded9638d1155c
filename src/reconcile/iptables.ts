/**
 * The iptables apply loop: read -> plan -> one restore per family -> read back
 * and verify. Families run side by side. A restore that fails because another
 * writer changed the state in between (a `-D` that finds nothing, a `-N` that
 * finds a chain) is retried from a fresh read, so concurrent runs converge
 * without a lock of our own; the xtables lock is still taken where the backend
 * has one.
 */
import type { IptablesBinaries } from '../backend/binaries.js';
import type { System } from '../backend/system.js';
import { lockHolders } from '../backend/lock-holders.js';
import { readLockFacts } from '../backend/namespaces.js';
import { isConcurrencyConflict, toolFailure } from '../backend/tool-errors.js';
import { ExitCode, MeshcapError } from '../errors.js';
import type { IdResolver } from '../render/iptables-save-form.js';
import { type Family, type Ruleset, familyLabel } from '../rules/model.js';
import { liveDifferences } from '../state/compare.js';
import { type SaveState, parseSave } from '../state/iptables-save.js';
import { type StateView, currentView } from '../state/iptables-view.js';
import { type FamilyPlan, cleanupInput, desiredOf, planFamily } from './plan.js';
import type { Logger } from '../log.js';
import type { EarlyWriter } from './early-writer.js';

export interface IptablesRunOptions {
  readonly sys: System;
  readonly log: Logger;
  readonly binaries: Partial<Record<Family, IptablesBinaries>>;
  /** Save output already read (by detection), used for the first read. */
  readonly prefetched?: Partial<Record<Family, string>>;
  readonly lockTimeoutSeconds: number;
  readonly force?: boolean;
  readonly resolveId?: IdResolver;
  /** Attempts before giving up on a state that keeps changing under us. */
  readonly maxAttempts?: number;
  /** Plans already made from `prefetched` (by planCapture), used for the first attempt. */
  readonly firstPlans?: Partial<Record<Family, FamilyPlan>>;
  /** Waits between attempts (tests pass one that does not wait). */
  readonly backoff?: () => Promise<void>;
  /** A restore already started (startEarlyWriter): used when it is the one a family needs. */
  readonly writer?: EarlyWriter;
}

export interface FamilyOutcome {
  readonly family: Family;
  readonly changed: boolean;
  readonly attempts: number;
  readonly changes: readonly string[];
}

const describeFamily = familyLabel;

async function readStateText(opts: Pick<IptablesRunOptions, 'sys'>, bins: IptablesBinaries, prefetched: string | undefined): Promise<string> {
  if (prefetched !== undefined) return prefetched;
  const result = await opts.sys.run(bins.save, []);
  if (result.code !== 0) {
    throw toolFailure(result, { action: `reading the ${describeFamily(bins.family)} rules with ${bins.save}` });
  }
  return result.stdout;
}

async function readState(opts: Pick<IptablesRunOptions, 'sys'>, bins: IptablesBinaries, prefetched: string | undefined): Promise<SaveState> {
  return parseSave(await readStateText(opts, bins, prefetched));
}

/** Has the mesh part of the state changed since it was read? */
async function stateChanged(opts: IptablesRunOptions, family: Family, before: string | undefined): Promise<boolean> {
  const now = await opts.sys.run(opts.binaries[family]!.save, []);
  if (now.code !== 0 || before === undefined) return false;
  const mesh = (text: string) => JSON.stringify([...currentView(parseSave(text))].map(([t, v]) => [t, [...v.meshChains], [...v.builtinRules]]));
  return mesh(now.stdout) !== mesh(before);
}

/** Restore input from which on the restore runs in the background (5000 excludes are ~150 KB; Istio's defaults ~1 KB). */
const BACKGROUND_INPUT = 32 * 1024;

export function restoreArgs(bins: Pick<IptablesBinaries, 'usesXtablesLock'>, lockTimeoutSeconds: number): string[] {
  return bins.usesXtablesLock ? ['--noflush', `--wait=${lockTimeoutSeconds}`] : ['--noflush'];
}

async function restore(opts: IptablesRunOptions, bins: IptablesBinaries, plan: FamilyPlan) {
  // Only a long input leaves work to do meanwhile (its read-back view); a short one is done before a
  // background child would pay. A fresh family's long input is rendered as the restore reads it.
  const long = plan.restoreInput.estimatedLength >= BACKGROUND_INPUT;
  const input = long && plan.fresh ? plan.restoreInput : plan.restoreInput.text();
  const args = restoreArgs(bins, opts.lockTimeoutSeconds);
  if (opts.writer?.takes(bins.restore, args)) return opts.writer.write(input);
  return opts.sys.run(bins.restore, args, { input, timeoutMs: (opts.lockTimeoutSeconds + 30) * 1000, background: long });
}

const jitter = () => new Promise((resolve) => setTimeout(resolve, 5 + Math.floor(Math.random() * 40)));

/**
 * Reconcile the families that need it: a family is touched when it has desired
 * rules or holds mesh leftovers (IPv6 turned off after being on, for example).
 */
export async function reconcileIptables(ruleset: Ruleset, opts: IptablesRunOptions): Promise<FamilyOutcome[]> {
  const families = (['ipv4', 'ipv6'] as const).filter((family) => opts.binaries[family] !== undefined);
  const maxAttempts = opts.maxAttempts ?? 8;
  const outcomes = new Map<Family, FamilyOutcome>();
  let pending: Family[] = [...families];
  const prefetched: Partial<Record<Family, string | undefined>> = { ...opts.prefetched };

  for (let attempt = 1; pending.length > 0; attempt++) {
    // Read: every pending family at once (Istio's order: v4 save, then v6 save).
    const statesText = await Promise.all(pending.map((family) => readStateText(opts, opts.binaries[family]!, prefetched[family])));
    const states = statesText.map(parseSave);
    for (const family of pending) prefetched[family] = undefined;
    const plans = pending.map(
      (family, i) =>
        (attempt === 1 ? opts.firstPlans?.[family] : undefined) ??
        planFamily(ruleset, family, states[i]!, { force: (opts.force ?? false) && attempt === 1, resolveId: opts.resolveId }),
    );
    for (const plan of plans) {
      if (plan.noop && !outcomes.has(plan.family)) {
        outcomes.set(plan.family, { family: plan.family, changed: false, attempts: attempt, changes: [] });
      }
      if (!plan.noop) {
        opts.log.info(`${describeFamily(plan.family)}: ${plan.fresh ? 'no mesh rules yet, applying' : 'reconciling'} (${plan.changes.length} difference${plan.changes.length === 1 ? '' : 's'})`);
        for (const change of plan.changes) opts.log.debug(`  ${change}`);
      }
    }
    const toApply = plans.filter((plan) => !plan.noop && !plan.restoreInput.empty);
    const restoring = Promise.all(toApply.map((plan) => restore(opts, opts.binaries[plan.family]!, plan)));
    // The read-back's expectation, rendered while the restores commit: a streamed input is first
    // written whole (rendering beside it would starve the child of its next lines on two cores).
    await Promise.race([Promise.all(toApply.map((plan) => plan.restoreInput.taken)), restoring]);
    const desired = toApply.map((plan) => desiredOf(ruleset, plan, opts.resolveId));
    const results = await restoring;
    // Logged once written: a streamed input is rendered as the restore reads it, not for the log first.
    for (const plan of toApply) opts.log.debug(`restore input (${describeFamily(plan.family)}):\n${plan.restoreInput.text()}`);

    const retry: Family[] = [];
    for (const [i, result] of results.entries()) {
      const plan = toApply[i]!;
      if (result.code === 0) continue;
      // A restore planned on a state that another writer has since changed fails on a -N, -D
      // or -X line; re-reading tells that apart from a real error.
      const changedMeanwhile = isConcurrencyConflict(result) || (await stateChanged(opts, plan.family, statesText[pending.indexOf(plan.family)]));
      if (changedMeanwhile && attempt < maxAttempts) {
        opts.log.info(`${describeFamily(plan.family)}: the rules changed while applying (another run?); reading them again`);
        retry.push(plan.family);
        continue;
      }
      throw toolFailure(result, {
        action: `applying the ${describeFamily(plan.family)} rules with ${opts.binaries[plan.family]!.restore}`,
        input: plan.restoreInput.text(),
        lockTimeoutSeconds: opts.lockTimeoutSeconds,
        lockHolders: (path) => lockHolders(path, readLockFacts(opts.sys, path)),
      });
    }

    // Read back what was applied and compare it with what was asked for.
    const applied = toApply.filter((plan) => !retry.includes(plan.family));
    const verified = await verifyPlans(ruleset, opts, applied, applied.map((plan) => desired[toApply.indexOf(plan)]!));
    for (const { plan, differences } of verified) {
      if (differences.length === 0) {
        outcomes.set(plan.family, { family: plan.family, changed: true, attempts: attempt, changes: plan.changes });
        continue;
      }
      if (attempt < maxAttempts) {
        opts.log.info(`${describeFamily(plan.family)}: the rules read back differ (another run?); reconciling again`);
        retry.push(plan.family);
        continue;
      }
      throw new MeshcapError({
        exitCode: ExitCode.VerifyFailed,
        what: `verifying the ${describeFamily(plan.family)} rules after applying them`,
        why: 'the rules read back from the kernel are not the ones applied; something else rewrites them, or the backend transforms them',
        fix: "compare with 'iptables-save' / 'iptables-legacy-save'; find the other writer; re-run meshcap to reconcile",
        output: differences.join('\n'),
      });
    }
    pending = retry;
    if (pending.length > 0) await (opts.backoff ?? jitter)();
  }
  return families.map((family) => outcomes.get(family)!).filter(Boolean);
}

async function verifyPlans(ruleset: Ruleset, opts: IptablesRunOptions, plans: readonly FamilyPlan[], desired: readonly StateView[]) {
  const saves = await Promise.all(plans.map((plan) => opts.sys.run(opts.binaries[plan.family]!.save, [])));
  return plans.map((plan, i) => {
    const result = saves[i]!;
    if (result.code !== 0) {
      throw toolFailure(result, { action: `reading back the ${describeFamily(plan.family)} rules with ${opts.binaries[plan.family]!.save}` });
    }
    const live = { kind: 'iptables', variant: opts.binaries[plan.family]!.variant, saves: { [plan.family]: result.stdout } } as const;
    // Chains a foreign rule still jumps to were flushed but had to stay.
    const differences = liveDifferences(ruleset, live, {
      families: [plan.family],
      resolveId: opts.resolveId,
      keptChains: plan.keptStaleChains,
      desired: { views: { [plan.family]: desired[i]! } },
    });
    return { plan, differences };
  });
}

/** Removes every mesh chain and rule from the given backend's families. Returns what was removed. */
export async function cleanIptables(
  opts: Pick<IptablesRunOptions, 'sys' | 'log' | 'binaries' | 'prefetched' | 'lockTimeoutSeconds' | 'backoff'>,
): Promise<Family[]> {
  const cleaned: Family[] = [];
  for (const family of ['ipv4', 'ipv6'] as const) {
    const bins = opts.binaries[family];
    if (!bins) continue;
    for (let attempt = 1; ; attempt++) {
      const state = await readState(opts, bins, attempt === 1 ? opts.prefetched?.[family] : undefined);
      const input = cleanupInput(state);
      if (input === '') break;
      const result = await opts.sys.run(bins.restore, restoreArgs(bins, opts.lockTimeoutSeconds), { input });
      if (result.code === 0) {
        cleaned.push(family);
        break;
      }
      if (!isConcurrencyConflict(result) || attempt >= 8) {
        throw toolFailure(result, {
          action: `removing the ${describeFamily(family)} mesh rules with ${bins.restore}`,
          input,
          lockTimeoutSeconds: opts.lockTimeoutSeconds,
          lockHolders: (path) => lockHolders(path, readLockFacts(opts.sys, path)),
        });
      }
      await (opts.backoff ?? jitter)();
    }
  }
  return cleaned;
}
