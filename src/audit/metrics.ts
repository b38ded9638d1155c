/**
 * The audit's Prometheus metrics in the text exposition format (0.0.4),
 * written by hand like the webhook's (src/webhook/metrics.ts): a handful of
 * series needs no client library. Per pod, exactly one
 * meshcap_pod_capture_state series with value 1 (its current state); per
 * state, a pod count, so an alert needs no count() over pod series.
 */
import { type CaptureState, CAPTURE_STATES, type PodAudit, REPAIRABLE } from './types.js';

export class AuditMetrics {
  private pods: readonly PodAudit[] = [];
  private readonly repairs = { ok: 0, failed: 0 };
  /** Repairs by the state they found: a state repaired within one audit never shows in the per-pod gauge. */
  private readonly repairedStates = new Map<CaptureState, number>([...REPAIRABLE].map((s) => [s, 0]));
  private readonly runs = { ok: 0, failed: 0 };
  private lastRunSeconds?: number;
  private lastSuccessSeconds?: number;
  private lastDurationSeconds?: number;

  /** A completed audit: its pods replace the previous ones (pods gone from the node drop out). */
  audited(pods: readonly PodAudit[], finishedAtMs: number, durationMs: number): void {
    this.pods = pods;
    for (const pod of pods) {
      if (!pod.repair) continue;
      this.repairs[pod.repair.result]++;
      this.repairedStates.set(pod.repair.before, (this.repairedStates.get(pod.repair.before) ?? 0) + 1);
    }
    this.runs.ok++;
    this.lastRunSeconds = finishedAtMs / 1000;
    this.lastSuccessSeconds = finishedAtMs / 1000;
    this.lastDurationSeconds = durationMs / 1000;
  }

  /** An audit that could not list the node's pods (the runtime did not answer): the last pod states stay. */
  failed(finishedAtMs: number, durationMs: number): void {
    this.runs.failed++;
    this.lastRunSeconds = finishedAtMs / 1000;
    this.lastDurationSeconds = durationMs / 1000;
  }

  render(): string {
    const lines: string[] = [];
    const family = (name: string, type: 'gauge' | 'counter', help: string) => lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);

    family('meshcap_pod_capture_state', 'gauge', 'Capture state of each injected pod on this node at the last audit: one series with value 1 per pod.');
    const sorted = [...this.pods].sort((a, b) => a.namespace.localeCompare(b.namespace) || a.pod.localeCompare(b.pod));
    for (const pod of sorted) {
      lines.push(`meshcap_pod_capture_state{namespace="${escape(pod.namespace)}",pod="${escape(pod.pod)}",state="${pod.state}"} 1`);
    }
    family('meshcap_pods_by_capture_state', 'gauge', 'Injected pods on this node per capture state at the last audit.');
    const counts = new Map<CaptureState, number>(CAPTURE_STATES.map((s) => [s, 0]));
    for (const pod of this.pods) counts.set(pod.state, counts.get(pod.state)! + 1);
    for (const [state, count] of counts) lines.push(`meshcap_pods_by_capture_state{state="${state}"} ${count}`);

    family('meshcap_capture_repairs_total', 'counter', 'In-place capture repairs, by result (ok: the pod audits ok right after).');
    lines.push(`meshcap_capture_repairs_total{result="ok"} ${this.repairs.ok}`, `meshcap_capture_repairs_total{result="failed"} ${this.repairs.failed}`);

    family('meshcap_capture_repairs_by_found_state_total', 'counter', 'In-place repairs by the state the audit found before repairing (missing, partial, drifted).');
    for (const [state, count] of this.repairedStates) lines.push(`meshcap_capture_repairs_by_found_state_total{state="${state}"} ${count}`);

    family('meshcap_audit_runs_total', 'counter', 'Audits run, by result (failed: the container runtime could not be listed).');
    lines.push(`meshcap_audit_runs_total{result="ok"} ${this.runs.ok}`, `meshcap_audit_runs_total{result="failed"} ${this.runs.failed}`);
    if (this.lastRunSeconds !== undefined) {
      family('meshcap_audit_last_run_timestamp_seconds', 'gauge', 'When the last audit finished (Unix time).');
      lines.push(`meshcap_audit_last_run_timestamp_seconds ${this.lastRunSeconds}`);
      family('meshcap_audit_duration_seconds', 'gauge', 'How long the last audit took, repairs included.');
      lines.push(`meshcap_audit_duration_seconds ${this.lastDurationSeconds}`);
    }
    if (this.lastSuccessSeconds !== undefined) {
      family('meshcap_audit_last_success_timestamp_seconds', 'gauge', 'When the last audit that listed the pods finished (Unix time): alert when it is old.');
      lines.push(`meshcap_audit_last_success_timestamp_seconds ${this.lastSuccessSeconds}`);
    }
    return `${lines.join('\n')}\n`;
  }
}

/** Label values per the exposition format: backslash, double quote and newline escaped. */
function escape(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
