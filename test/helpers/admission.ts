/**
 * AdmissionReviews as the API server sends them, and their patches applied as
 * a consumer would: with fast-json-patch, an RFC 6902 library independent of
 * meshcap, validating every op and leaving the input untouched.
 */
import jsonPatch, { type Operation } from 'fast-json-patch';
import type { JsonObject } from '../../src/inject/json.js';

export function admissionReview(pod: JsonObject, uid = 'uid-1', namespace = 'default'): JsonObject {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      operation: 'CREATE',
      namespace,
      object: pod,
    },
  };
}

/** The `response` of an AdmissionReview answer body. */
export function responseOf(body: string): JsonObject {
  return (JSON.parse(body) as { response: JsonObject }).response;
}

/** The JSON Patch a response carries (base64 of a JSON array). */
export function patchOf(response: JsonObject): Operation[] {
  const patch: unknown = JSON.parse(Buffer.from(String(response.patch), 'base64').toString('utf8'));
  if (!Array.isArray(patch)) throw new Error(`the patch is not a JSON array of operations: ${JSON.stringify(patch)}`);
  return patch as Operation[];
}

export function applyPatch(document: JsonObject, patch: readonly Operation[]): JsonObject {
  return jsonPatch.applyPatch(document, [...patch], true, false).newDocument;
}
