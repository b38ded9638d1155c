/**
 * Field-by-field comparison of meshcap's injection with Istio's goldens, and the
 * match report (`node dist/test/golden/inject-compare.js` prints it; the anchor
 * test prints it too). Full byte equality with Istio's proxy template is not
 * the goal; the fields below are what a pod's behaviour depends on.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { injectManifests } from '../../src/inject/manifest.js';
import { type Json, type JsonObject, asArray, asObject, deepEqual, isObject } from '../../src/inject/json.js';
import { isList, locatePod } from '../../src/inject/workloads.js';
import { ANCHORS_DIR, REPO_ROOT } from '../helpers/paths.js';
import { FIXTURE_CASES, INJECT_CASES, ISTIO_LIKE, type InjectCase } from './inject-cases.js';

export const INJECT_DIR = join(ANCHORS_DIR, 'istio-inject');
export const FIXTURES_DIR = join(REPO_ROOT, 'test', 'fixtures', 'istio-inject');
export const dirOf = (c: InjectCase) => (c.dir === 'fixtures' ? FIXTURES_DIR : INJECT_DIR);

interface Pod {
  readonly metadata: JsonObject;
  readonly spec: JsonObject;
}

/** Pods (templates) of every injectable document, List items expanded; CronJob metadata merged as Istio writes it. */
export function podsOf(text: string): Pod[] {
  const pods: Pod[] = [];
  for (const doc of YAML.parseAllDocuments(text)) {
    const object: unknown = doc.toJS();
    const items = isList(object) ? object.items : [object];
    for (const item of items) {
      const located = locatePod(item);
      if (!located) continue;
      let metadata = located.target.metadata;
      if (isObject(item) && item.kind === 'CronJob') {
        const jobMeta = asObject(asObject(asObject(item.spec)?.jobTemplate)?.metadata);
        if (jobMeta) metadata = { ...metadata, ...jobMeta };
      }
      pods.push({ metadata, spec: located.target.spec });
    }
  }
  return pods;
}

const byName = (list: Json | undefined, name: string): JsonObject | undefined =>
  (asArray(list) ?? []).find((c): c is JsonObject => isObject(c) && c.name === name);
const names = (list: Json | undefined): string[] => (asArray(list) ?? []).filter(isObject).map((c) => String(c.name));
const proxyOf = (pod: Pod) => byName(pod.spec.initContainers, 'istio-proxy') ?? byName(pod.spec.containers, 'istio-proxy');
/** istio-init, or in the CNI layout istio-validation (placement tells which). */
const initOf = (pod: Pod) => byName(pod.spec.initContainers, 'istio-init') ?? byName(pod.spec.initContainers, 'istio-validation');
const envOf = (container: JsonObject | undefined, name: string) =>
  (asArray(container?.env) ?? []).find((e): e is JsonObject => isObject(e) && e.name === name)?.value ?? null;
const ISTIO_ANNOTATIONS = [
  'istio.io/rev', 'kubectl.kubernetes.io/default-container', 'kubectl.kubernetes.io/default-logs-container',
  'prometheus.io/path', 'prometheus.io/port', 'prometheus.io/scrape', 'sidecar.istio.io/status',
  // What the CNI layout writes for the plugin (elsewhere: the user's own, kept as they are).
  'sidecar.istio.io/interceptionMode', 'traffic.sidecar.istio.io/includeOutboundIPRanges', 'traffic.sidecar.istio.io/excludeOutboundIPRanges',
  'traffic.sidecar.istio.io/includeInboundPorts', 'traffic.sidecar.istio.io/excludeInboundPorts',
  'traffic.sidecar.istio.io/includeOutboundPorts', 'traffic.sidecar.istio.io/excludeOutboundPorts',
];
const pick = (object: Json | undefined, keys: readonly string[]) => Object.fromEntries(keys.map((k) => [k, asObject(object)?.[k]]));
/** App containers; Istio's re-serialization adds an empty `resources: {}`, which means nothing. */
const userContainers = (list: Json | undefined) =>
  (asArray(list) ?? [])
    .filter((c): c is JsonObject => isObject(c) && c.name !== 'istio-proxy' && c.name !== 'istio-init' && c.name !== 'istio-validation')
    .map(({ resources, ...rest }) => (deepEqual(resources, {}) || resources === undefined ? rest : { ...rest, resources }));

/** Field name -> extractor. The first two are the contract the tests assert. */
export const FIELDS: Readonly<Record<string, (pod: Pod) => unknown>> = {
  initArgs: (pod) => initOf(pod)?.args ?? null,
  placement: (pod) => ({
    initContainers: names(pod.spec.initContainers),
    containers: names(pod.spec.containers),
    proxyRestartPolicy: proxyOf(pod)?.restartPolicy ?? null,
  }),
  lifecycle: (pod) => Object.keys(asObject(proxyOf(pod)?.lifecycle) ?? {}).sort(),
  initImage: (pod) => initOf(pod)?.image ?? null,
  initSecurityContext: (pod) => initOf(pod)?.securityContext ?? null,
  proxyImage: (pod) => proxyOf(pod)?.image ?? null,
  proxyArgs: (pod) => proxyOf(pod)?.args ?? null,
  proxyProbes: (pod) => pick(proxyOf(pod), ['startupProbe', 'readinessProbe', 'livenessProbe']),
  proxySecurityContext: (pod) => proxyOf(pod)?.securityContext ?? null,
  proxyPorts: (pod) => proxyOf(pod)?.ports ?? null,
  volumeMounts: (pod) => proxyOf(pod)?.volumeMounts ?? null,
  // Istio's serialization writes an absent resources block as {}.
  resources: (pod) => [initOf(pod)?.resources ?? null, proxyOf(pod)?.resources ?? null].map((r) => (deepEqual(r, {}) ? null : r)),
  volumes: (pod) => names(pod.spec.volumes),
  labels: (pod) => pod.metadata.labels ?? null,
  annotations: (pod) => pick(pod.metadata.annotations, ISTIO_ANNOTATIONS),
  containers: (pod) => [userContainers(pod.spec.initContainers), userContainers(pod.spec.containers)],
  // Compared as text: the agent parses it, and Istio's exact JSON (key order, omitted fields) is the contract.
  ISTIO_KUBE_APP_PROBERS: (pod) => envOf(proxyOf(pod), 'ISTIO_KUBE_APP_PROBERS'),
};

export interface CaseResult {
  readonly c: InjectCase;
  readonly status: 'compared' | 'skipped-ok' | 'error-ok' | 'failed';
  readonly fields: Record<string, { matched: number; total: number }>;
  readonly detail?: string;
}

export function runCase(c: InjectCase): { result: CaseResult; ours?: string; mismatches: Record<string, { ours: unknown; istio: unknown }[]> } {
  const mismatches: Record<string, { ours: unknown; istio: unknown }[]> = {};
  const input = readFileSync(join(dirOf(c), c.input), 'utf8');
  const settings = { ...ISTIO_LIKE, ...c.settings };
  let out;
  try {
    out = injectManifests(input, settings);
  } catch (error) {
    const message = (error as Error).message;
    const ok = c.error !== undefined && c.error.every((s) => message.includes(s));
    return { result: { c, status: ok ? 'error-ok' : 'failed', fields: {}, detail: message }, mismatches };
  }
  if (c.error) return { result: { c, status: 'failed', fields: {}, detail: 'expected an error, got output' }, mismatches };
  if (c.skipped) {
    const ok = out.text === input && out.injected === 0 && out.skipped > 0;
    return { result: { c, status: ok ? 'skipped-ok' : 'failed', fields: {} }, ours: out.text, mismatches };
  }
  const golden = readFileSync(join(dirOf(c), c.golden!), 'utf8');
  const ours = podsOf(out.text);
  const theirs = podsOf(golden);
  // A golden whose kind podsOf does not know would otherwise compare nothing and pass.
  if (theirs.length === 0) return { result: { c, status: 'failed', fields: {}, detail: 'no pod found in the golden' }, ours: out.text, mismatches };
  const fields: Record<string, { matched: number; total: number }> = {};
  for (const [field, extract] of Object.entries(FIELDS)) {
    const entry = (fields[field] = { matched: 0, total: theirs.length });
    theirs.forEach((pod, i) => {
      const mine = ours[i] ? extract(ours[i]!) : undefined;
      const want = extract(pod);
      if (deepEqual(mine, want)) entry.matched++;
      else (mismatches[field] ??= []).push({ ours: mine, istio: want });
    });
  }
  if (ours.length !== theirs.length) return { result: { c, status: 'failed', fields, detail: `${ours.length} pods, Istio ${theirs.length}` }, ours: out.text, mismatches };
  return { result: { c, status: 'compared', fields }, ours: out.text, mismatches };
}

export function matchReport(): string {
  const lines: string[] = ['meshcap inject vs Istio injection anchors (pods matching / pods compared, per field)'];
  const totals: Record<string, { matched: number; total: number }> = {};
  const counts = { compared: 0, 'skipped-ok': 0, 'error-ok': 0, failed: 0 };
  for (const c of [...INJECT_CASES, ...FIXTURE_CASES]) {
    const { result } = runCase(c);
    counts[result.status]++;
    const label = `#${String(c.n).padStart(2)} ${c.golden ?? c.input}${c.settings ? ` (${Object.keys(c.settings).join(', ')})` : ''}`;
    if (result.status !== 'compared') {
      lines.push(`${label}: ${result.status}${result.detail ? ` - ${result.detail.split('\n')[0]}` : ''}`);
      continue;
    }
    const misses = Object.entries(result.fields).filter(([, f]) => f.matched !== f.total).map(([name]) => name);
    for (const [name, f] of Object.entries(result.fields)) {
      const t = (totals[name] ??= { matched: 0, total: 0 });
      t.matched += f.matched;
      t.total += f.total;
    }
    lines.push(`${label}: ${misses.length === 0 ? 'all fields match' : `differs in ${misses.join(', ')}`}`);
  }
  lines.push('', 'per field over all compared pods:');
  for (const [name, t] of Object.entries(totals)) lines.push(`  ${name.padEnd(22)} ${t.matched}/${t.total}`);
  lines.push('', `cases: ${INJECT_CASES.length + FIXTURE_CASES.length} rows; ${counts.compared} compared, ${counts['skipped-ok']} skipped unchanged, ${counts['error-ok']} rejected as expected, ${counts.failed} failed`);
  return lines.join('\n');
}

if (process.argv[1]?.endsWith('inject-compare.js')) console.log(matchReport());
