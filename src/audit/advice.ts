/**
 * What each non-ok audit state means and how to fix it, for people reading
 * `meshcap audit` output and for `meshcap doctor` reading `audit --json`.
 * Pure data plus a parser of the JSON the audit prints.
 */
import { CAPTURE_STATES, type CaptureState } from './types.js';

export interface StateAdvice {
  readonly meaning: string;
  readonly causes: string;
  readonly fix: string;
}

export const ADVICE: Readonly<Record<Exclude<CaptureState, 'ok'>, StateAdvice>> = {
  missing: {
    meaning: "the pod has no mesh capture at all: its traffic bypasses the proxy (no mTLS, no policy, no telemetry) while it looks Running",
    causes:
      "the CNI plugin was not in the node's chain when the sandbox was created (the startup race), istio-init wrote into the other iptables backend and the pod ran anyway, or a node process flushed the pod's nat table after start",
    fix: "run 'meshcap audit --repair' on the node (the agent does it with --repair in-place): the engine restores the capture in place, no restart; connections opened before the repair stay uncaptured until they reconnect",
  },
  partial: {
    meaning: 'some mesh rules are there but the capture is not complete (a hook jump removed, a chain emptied): part of the traffic bypasses the proxy',
    causes: "another process deleted or flushed part of the mesh's rules (a node agent cleaning 'unknown' rules, a script, a second mesh's init)",
    fix: "run 'meshcap audit --repair' (or let the agent repair): the capture is restored in place; if it comes back partial, something keeps removing rules: see foreign-conflict",
  },
  drifted: {
    meaning: "the pod's capture is complete but another configuration than its annotations ask for (the differing flags are listed)",
    causes: 'the traffic annotations were changed on a running pod (they are read when the pod starts), or another injector or version wrote the rules',
    fix: "run 'meshcap audit --repair' to write the configuration the annotations ask for, or restart the pod if the annotations were changed on purpose",
  },
  'duplicated-backend': {
    meaning: 'mesh rules exist in more than one backend (iptables-legacy and iptables-nft, or iptables and native nftables): the kernel runs all of them and each tool shows only its part',
    causes: "an istio-init image whose iptables differs from the node's, re-run with the other backend; or both a CNI plugin and istio-init capturing the same pod",
    fix: "keep one: inside the pod's namespace run 'meshcap clean' and then apply once with the intended backend (meshcap apply keeps one backend by itself), and make sure only one of the plugin or istio-init captures a pod; the audit reports this state and never picks a side",
  },
  'foreign-conflict': {
    meaning: "another tool's rules defeat the capture (the deciding rule is named), or something keeps rewriting the pod's rules after each repair",
    causes: 'a second CNI or mesh (Cilium, another sidecar injector), a privileged app container with NET_ADMIN, or a controller reconciling its own idea of the rules',
    fix: "find the tool that owns the named rule and exempt the pod from it or order its rules after the mesh's; the audit never overwrites them, and resumes repairs once the repair window has passed without a new rewrite",
  },
  unreadable: {
    meaning: "the audit could not read the pod's capture",
    causes: "the pod stopped during the audit, the audit lacks root / CAP_SYS_ADMIN or the runtime's netns directory, or the pod's annotations are invalid (named in the details)",
    fix: "run the audit as root on the node with the runtime's netns directory visible; fix the named annotation if one is invalid",
  },
};

export interface AuditPodRecord {
  readonly namespace: string;
  readonly pod: string;
  readonly state: CaptureState;
  readonly details: readonly string[];
}

/** The pods of `meshcap audit --json` output, or undefined when `text` is not that output. */
export function parseAuditJson(text: string): AuditPodRecord[] | undefined {
  const trimmed = text.trimStart();
  if (!trimmed.startsWith('{')) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch {
    return undefined;
  }
  const pods = (value as { pods?: unknown })?.pods;
  if (!Array.isArray(pods)) return undefined;
  const out: AuditPodRecord[] = [];
  for (const item of pods) {
    const p = item as Partial<Record<keyof AuditPodRecord, unknown>>;
    if (typeof p.namespace !== 'string' || typeof p.pod !== 'string' || typeof p.state !== 'string') return undefined;
    if (!(CAPTURE_STATES as readonly string[]).includes(p.state)) return undefined;
    const details = Array.isArray(p.details) ? p.details.filter((d): d is string => typeof d === 'string') : [];
    out.push({ namespace: p.namespace, pod: p.pod, state: p.state as CaptureState, details });
  }
  return out;
}

/** Each non-ok pod with what its state means, the evidence, and the fix. */
export function explainAudit(pods: readonly AuditPodRecord[]): string {
  const bad = pods.filter((p) => p.state !== 'ok');
  const lines = [`meshcap audit: ${pods.length} pod${pods.length === 1 ? '' : 's'} audited, ${pods.length - bad.length} ok${bad.length ? `, ${bad.length} not` : ''}`];
  for (const pod of bad) {
    const advice = ADVICE[pod.state as Exclude<CaptureState, 'ok'>];
    lines.push('', `${pod.namespace}/${pod.pod}: ${pod.state}`, `  meaning: ${advice.meaning}`);
    for (const d of pod.details) lines.push(`  found:   ${d}`);
    lines.push(`  likely:  ${advice.causes}`, `  fix:     ${advice.fix}`);
  }
  return `${lines.join('\n')}\n`;
}

/** `--json`: the audit's pods, each non-ok one with its meaning, likely causes and fix. */
export function auditAdviceJson(pods: readonly AuditPodRecord[]): string {
  return `${JSON.stringify({ pods: pods.map((p) => (p.state === 'ok' ? p : { ...p, ...ADVICE[p.state as Exclude<CaptureState, 'ok'>] })) }, null, 2)}\n`;
}
