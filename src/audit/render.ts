/** Audit results -> one line per pod, or the JSON the doctor reads. Pure. */
import type { PodAudit } from './types.js';

export function renderAuditText(pods: readonly PodAudit[]): string {
  if (pods.length === 0) return 'no injected pods on this node\n';
  const width = Math.max(...pods.map((p) => `${p.namespace}/${p.pod}`.length));
  const lines = pods.map((p) => {
    const name = `${p.namespace}/${p.pod}`.padEnd(width);
    const repaired = p.repair ? ` (was ${p.repair.before}; repair ${p.repair.result === 'ok' ? 'succeeded' : 'failed'})` : '';
    const details = p.state === 'ok' ? '' : `: ${p.details.join('; ')}`;
    return `${name}  ${p.state}${repaired}${details}`;
  });
  return `${lines.join('\n')}\n`;
}

/** `{"pods":[{"namespace","pod","state","details"}]}`, plus the repair when one ran. */
export function auditJson(pods: readonly PodAudit[]): string {
  return `${JSON.stringify(
    {
      pods: pods.map((p) => ({
        namespace: p.namespace,
        pod: p.pod,
        state: p.state,
        details: p.details,
        ...(p.repair ? { repair: p.repair } : {}),
      })),
    },
    null,
    2,
  )}\n`;
}
