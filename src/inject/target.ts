/** What the injection engine is given: one pod (template), the workload owning it, and the names of what it injects. Types and constants only. */
import type { JsonObject } from './json.js';

export const INIT_NAME = 'istio-init';
/** The CNI layout's init container: it proves the plugin's capture works, changing nothing. */
export const VALIDATION_NAME = 'istio-validation';
export const PROXY_NAME = 'istio-proxy';

export interface Workload {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly namespace: string;
}

export interface PodTarget {
  /** Pod (template) metadata and spec, exactly as received ({} when absent). */
  readonly metadata: JsonObject;
  /** False when the object has no metadata key at all (the patch must then create it). */
  readonly hasMetadata: boolean;
  readonly spec: JsonObject;
  /** The object that owns the pod, for ISTIO_META_WORKLOAD_NAME / ISTIO_META_OWNER. */
  readonly workload: Workload;
  /** `Deployment "default/hello"`, for messages. */
  readonly subject: string;
}
