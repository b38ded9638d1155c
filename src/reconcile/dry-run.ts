/**
 * A capture plan printed as Istio's dry-run trace (what `istio-iptables
 * --dry-run` prints): for iptables, a `<binary>-save` line per family read,
 * each restore input's lines, then a `-save` line per family read back; for
 * nftables, the transaction text. Pure: the trace is a rendering of the plan,
 * not a record of the engine's calls.
 */
import type { Logger } from '../log.js';
import { familyLabel } from '../rules/model.js';
import type { CapturePlan } from './engine.js';
import { nftCleanupInput } from './nftables.js';

const base = (file: string) => file.split('/').pop() ?? file;
const lines = (text: string) => text.split('\n').filter((line) => line !== '');

export function renderDryRun(plan: CapturePlan): string {
  if (plan.kind === 'nftables') return plan.cleanupOnly ? nftCleanupInput(plan.tablesToDelete) : (plan.transaction?.transaction ?? '');
  const out: string[] = [];
  if (plan.cleanupOnly) {
    // Family by family: read, then the removal (none when nothing is there).
    for (const step of plan.families) out.push(base(step.binaries.save), ...lines(step.cleanupInput ?? ''));
  } else {
    const applied = plan.families.filter((step) => step.plan && !step.plan.noop && !step.plan.restoreInput.empty);
    out.push(
      ...plan.families.map((step) => base(step.binaries.save)),
      ...applied.flatMap((step) => lines(step.plan!.restoreInput.text())),
      ...applied.map((step) => base(step.binaries.save)),
    );
  }
  return out.length ? `${out.join('\n')}\n` : '';
}

/** Logs what a plan changes, in the words the engine uses when it applies it. */
export function logPlan(plan: CapturePlan, log: Logger): void {
  if (plan.kind === 'nftables') {
    if (plan.transaction && plan.transaction.transaction !== '') log.debug(`nft transaction:\n${plan.transaction.transaction}`);
    return;
  }
  for (const step of plan.families) {
    if (!step.plan || step.plan.noop) continue;
    const n = step.plan.changes.length;
    log.info(`${familyLabel(step.family)}: ${step.plan.fresh ? 'no mesh rules yet, applying' : 'reconciling'} (${n} difference${n === 1 ? '' : 's'})`);
    for (const change of step.plan.changes) log.debug(`  ${change}`);
    log.debug(`restore input (${familyLabel(step.family)}):\n${step.plan.restoreInput.text()}`);
  }
}
