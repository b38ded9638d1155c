/**
 * AdmissionReview (admission.k8s.io/v1) in, AdmissionReview out, through the
 * same engine as `meshcap inject`. Pure: the HTTP shell hands over the body
 * text and gets back the status code and JSON to send.
 */
import { ConfigError } from '../config/parse.js';
import { type JsonObject, asArray, asObject, isObject } from '../inject/json.js';
import { type PodTarget, injectPod } from '../inject/pod.js';
import type { InjectSettings } from '../inject/settings.js';
import type { Outcome } from './metrics.js';

export interface ReviewAnswer {
  readonly status: number;
  readonly body: JsonObject;
  readonly outcome: Outcome;
  readonly uid?: string;
  /** One line for the log. */
  readonly message: string;
}

const MAX_DEPTH = 64;

function problem(status: number, message: string): ReviewAnswer {
  return { status, body: { error: message }, outcome: 'error', message };
}

export function answerReview(text: string, settings: InjectSettings): ReviewAnswer {
  if (text.trim() === '') return problem(400, 'empty body: expected an admission.k8s.io/v1 AdmissionReview');
  let review: unknown;
  try {
    review = JSON.parse(text);
  } catch (error) {
    return problem(400, `body is not JSON: ${(error as Error).message}`);
  }
  // Deeply nested JSON is legal but no pod needs it; refusing it bounds the engine's recursion.
  if (depthExceeds(review, MAX_DEPTH)) return problem(400, `body nests deeper than ${MAX_DEPTH} levels`);
  if (!isObject(review) || review.kind !== 'AdmissionReview') return problem(400, 'body is not an AdmissionReview');
  if (review.apiVersion !== 'admission.k8s.io/v1') {
    return problem(400, `AdmissionReview apiVersion ${JSON.stringify(review.apiVersion)} is not supported: register the webhook with admissionReviewVersions: ["v1"]`);
  }
  const request = asObject(review.request);
  if (!request || typeof request.uid !== 'string' || request.uid === '') return problem(400, 'AdmissionReview has no request.uid');
  const uid = request.uid;
  const respond = (response: JsonObject, outcome: Outcome, message: string): ReviewAnswer => ({
    status: 200,
    body: { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid, ...response } },
    outcome,
    uid,
    message,
  });

  const kind = asObject(request.kind);
  const pod = asObject(request.object);
  if ((kind && (kind.kind !== 'Pod' || (kind.group ?? '') !== '')) || (request.operation !== undefined && request.operation !== 'CREATE')) {
    return respond({ allowed: true }, 'skipped', `not a pod creation (${String(kind?.kind)} ${String(request.operation)}): allowed unchanged`);
  }
  if (!pod || !isObject(pod.spec)) {
    return respond({ allowed: false, status: { code: 400, message: 'request.object is not a Pod with a spec' } }, 'denied', 'request.object is not a Pod');
  }
  const target = podTarget(pod, typeof request.namespace === 'string' ? request.namespace : undefined);
  try {
    const outcome = injectPod(target, settings);
    if (outcome.kind === 'skipped') return respond({ allowed: true }, 'skipped', outcome.reason);
    if (outcome.ops.length === 0) return respond({ allowed: true }, 'skipped', `${target.subject} is already injected with the same result`);
    const patch = Buffer.from(JSON.stringify(outcome.ops)).toString('base64');
    return respond({ allowed: true, patchType: 'JSONPatch', patch }, 'injected', `injected ${target.subject}`);
  } catch (error) {
    if (error instanceof ConfigError) {
      // Rejecting the pod is the point: injecting a capture the init container would refuse breaks it later, less visibly.
      return respond({ allowed: false, status: { code: 400, message: error.message } }, 'denied', error.message);
    }
    throw error;
  }
}

/**
 * The pod as the engine sees it. The workload is guessed from the owner the way
 * Istio does (a ReplicaSet named <deployment>-<pod-template-hash> stands for
 * its Deployment), so env and names match what `meshcap inject` gives the
 * workload.
 */
export function podTarget(pod: JsonObject, requestNamespace: string | undefined): PodTarget {
  const metadata = asObject(pod.metadata) ?? {};
  const namespace = typeof metadata.namespace === 'string' && metadata.namespace !== '' ? metadata.namespace : requestNamespace || 'default';
  const labels = asObject(metadata.labels) ?? {};
  const owner = (asArray(metadata.ownerReferences) ?? []).filter(isObject).find((ref) => ref.controller === true);
  let workload = {
    apiVersion: 'v1',
    kind: 'Pod',
    name: typeof metadata.name === 'string' && metadata.name !== '' ? metadata.name : String(metadata.generateName ?? '').replace(/-$/, ''),
    namespace,
  };
  if (owner && typeof owner.kind === 'string' && typeof owner.name === 'string' && typeof owner.apiVersion === 'string') {
    workload = { apiVersion: owner.apiVersion, kind: owner.kind, name: owner.name, namespace };
    const hash = labels['pod-template-hash'];
    if (owner.kind === 'ReplicaSet' && typeof hash === 'string' && owner.name.endsWith(`-${hash}`)) {
      workload = { apiVersion: 'apps/v1', kind: 'Deployment', name: owner.name.slice(0, -hash.length - 1), namespace };
    }
    // The CronJob controller names its Jobs <cronjob>-<scheduled minute>.
    const cron = owner.kind === 'Job' ? /^(.+)-[0-9]{8,10}$/.exec(owner.name) : null;
    if (cron) workload = { apiVersion: 'batch/v1', kind: 'CronJob', name: cron[1]!, namespace };
  }
  // managedFields can be large and never matter here; the engine never sees them.
  const { managedFields: _ignored, ...cleanMetadata } = metadata;
  return {
    metadata: cleanMetadata,
    hasMetadata: isObject(pod.metadata),
    spec: pod.spec as JsonObject,
    workload,
    subject: `Pod "${namespace}/${workload.kind === 'Pod' ? workload.name : `${workload.name}-*****`}"`,
  };
}

function depthExceeds(value: unknown, limit: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [item, depth] = stack.pop()!;
    if (depth > limit) return true;
    if (Array.isArray(item)) for (const child of item) stack.push([child, depth + 1]);
    else if (isObject(item)) for (const child of Object.values(item)) stack.push([child, depth + 1]);
  }
  return false;
}
