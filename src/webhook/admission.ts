/**
 * AdmissionReview (admission.k8s.io/v1) in, AdmissionReview out, through the
 * same engine as `meshcap inject`. Pure: the HTTP shell hands over the body
 * text and gets back the status code and JSON to send.
 */
import { createHash } from 'node:crypto';
import { ConfigError } from '../config/parse.js';
import { type JsonObject, asObject, isObject } from '../inject/json.js';
import { type PodTarget, injectPod } from '../inject/pod.js';
import type { InjectSettings } from '../inject/settings.js';
import { podWorkload } from '../inject/workloads.js';
import type { Outcome } from './metrics.js';
import { type UidLiteral, locateRequestUid } from './review-uid.js';

export interface ReviewAnswer {
  readonly status: number;
  /** The JSON body to send, as text. */
  readonly body: string;
  readonly outcome: Outcome;
  readonly uid?: string;
  /** One line for the log. */
  readonly message: string;
  /** Answered from the AnswerCache. */
  readonly cached: boolean;
}

/**
 * Answers by request content. Pods of one ReplicaSet reach the webhook as
 * identical objects (generateName, no name or uid yet), so a scale-out repeats
 * the same question with only the request uid changed; the engine is pure, so
 * a remembered answer is the answer. Owned by the caller (the HTTP shell);
 * bounded, least recently used evicted first.
 */
export class AnswerCache {
  private readonly entries = new Map<string, Cached>();
  constructor(readonly capacity: number) {}

  get(key: string): Cached | undefined {
    const hit = this.entries.get(key);
    if (hit) {
      this.entries.delete(key);
      this.entries.set(key, hit);
    }
    return hit;
  }

  set(key: string, value: Cached): void {
    if (this.capacity <= 0) return;
    this.entries.set(key, value);
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
  }
}

interface Cached {
  /** The response's members after `uid`, as JSON text starting with a comma. */
  readonly responseTail: string;
  readonly outcome: Outcome;
  readonly message: string;
}

function problem(status: number, message: string): ReviewAnswer {
  return { status, body: JSON.stringify({ error: message }), outcome: 'error', message, cached: false };
}

/** Pods are a few KiB; a request larger than this is answered but not remembered. */
export const MAX_CACHED_REQUEST_CHARS = 64 * 1024;

/**
 * The cache key: a SHA-256 digest of the body text with the request uid's
 * literal cut out, and of where it was, so two bodies with one key differ in
 * nothing but the uid. Hashing the text the API server sent avoids serialising
 * the pod again and keeps keys small; a cryptographic digest because a crafted
 * collision would hand one pod another's patch.
 */
function cacheKey(text: string, literal: UidLiteral): string {
  return createHash('sha256').update(`${literal.start}:`).update(text.slice(0, literal.start)).update(text.slice(literal.end)).digest('base64');
}

export function answerReview(text: string, settings: InjectSettings, cache?: AnswerCache): ReviewAnswer {
  try {
    return answer(text, settings, cache);
  } catch (error) {
    // Absurdly nested JSON is legal but no pod needs it; the engine's recursion runs out of stack on it.
    if (error instanceof RangeError) return problem(400, `body cannot be processed: ${error.message}`);
    throw error;
  }
}

/** Built as text: the patch is a long base64 string that JSON.stringify would scan once more for nothing. */
function respond(uid: string, { responseTail, outcome, message }: Cached, cached: boolean): ReviewAnswer {
  return {
    status: 200,
    body: `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":${JSON.stringify(uid)}${responseTail}}}`,
    outcome,
    uid,
    message,
    cached,
  };
}

function answer(text: string, settings: InjectSettings, cache: AnswerCache | undefined): ReviewAnswer {
  // A repeated request is answered before any parsing: its text but for the uid was parsed and answered before.
  const literal = cache && cache.capacity > 0 && text.length <= MAX_CACHED_REQUEST_CHARS ? locateRequestUid(text) : undefined;
  const key = literal && cacheKey(text, literal);
  const hit = key === undefined ? undefined : cache!.get(key);
  if (hit) return respond(literal!.uid, hit, true);

  if (text.trim() === '') return problem(400, 'empty body: expected an admission.k8s.io/v1 AdmissionReview');
  let review: unknown;
  try {
    review = JSON.parse(text);
  } catch (error) {
    return problem(400, `body is not JSON: ${(error as Error).message}`);
  }
  if (!isObject(review) || review.kind !== 'AdmissionReview') return problem(400, 'body is not an AdmissionReview');
  if (review.apiVersion !== 'admission.k8s.io/v1') {
    return problem(400, `AdmissionReview apiVersion ${JSON.stringify(review.apiVersion)} is not supported: register the webhook with admissionReviewVersions: ["v1"]`);
  }
  const request = asObject(review.request);
  if (!request || typeof request.uid !== 'string' || request.uid === '') return problem(400, 'AdmissionReview has no request.uid');
  const fresh = answerRequest(request, settings);
  // Remembered only when the located literal is the very uid JSON.parse saw (no duplicate keys or other oddities).
  if (key !== undefined && literal!.uid === request.uid) cache!.set(key, fresh);
  return respond(request.uid, fresh, false);
}

function answerRequest(request: JsonObject, settings: InjectSettings): Cached {
  const kind = asObject(request.kind);
  const pod = asObject(request.object);
  if ((kind && (kind.kind !== 'Pod' || (kind.group ?? '') !== '')) || (request.operation !== undefined && request.operation !== 'CREATE')) {
    return cached({ allowed: true }, 'skipped', `not a pod creation (${String(kind?.kind)} ${String(request.operation)}): allowed unchanged`);
  }
  if (!pod || !isObject(pod.spec)) {
    return cached({ allowed: false, status: { code: 400, message: 'request.object is not a Pod with a spec' } }, 'denied', 'request.object is not a Pod');
  }
  const namespace = typeof request.namespace === 'string' ? request.namespace : undefined;
  return answerPod(pod, namespace, settings);
}

function cached(response: JsonObject, outcome: Outcome, message: string): Cached {
  return { responseTail: `,${JSON.stringify(response).slice(1, -1)}`, outcome, message };
}

function answerPod(pod: JsonObject, namespace: string | undefined, settings: InjectSettings): Cached {
  const target = podTarget(pod, namespace);
  try {
    const outcome = injectPod(target, settings);
    if (outcome.kind === 'skipped') return cached({ allowed: true }, 'skipped', outcome.reason);
    if (outcome.ops.length === 0) return cached({ allowed: true }, 'skipped', `${target.subject} is already injected with the same result`);
    const patch = Buffer.from(JSON.stringify(outcome.ops)).toString('base64');
    return { responseTail: `,"allowed":true,"patchType":"JSONPatch","patch":"${patch}"`, outcome: 'injected', message: `injected ${target.subject}` };
  } catch (error) {
    if (error instanceof ConfigError) {
      // Rejecting the pod is the point: injecting a capture the init container would refuse breaks it later, less visibly.
      return cached({ allowed: false, status: { code: 400, message: error.message } }, 'denied', error.message);
    }
    throw error;
  }
}

/**
 * The pod as the engine sees it. The workload comes from its controller
 * (workloads.ts podWorkload, shared with `meshcap inject` on a Pod), so env and
 * names match what `meshcap inject` gives the workload itself.
 */
export function podTarget(pod: JsonObject, requestNamespace: string | undefined): PodTarget {
  const metadata = asObject(pod.metadata) ?? {};
  const namespace = typeof metadata.namespace === 'string' && metadata.namespace !== '' ? metadata.namespace : requestNamespace || 'default';
  const workload = podWorkload(metadata, namespace);
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
