/**
 * Where the pod template lives in each kind `meshcap inject` handles. CronJob
 * pods are injected at spec.jobTemplate.spec.template, metadata included
 * (Istio writes the labels and annotations to the Job template's metadata
 * instead, where they never reach the pod). Pure.
 */
import { type JsonObject, asObject, isObject } from './json.js';
import type { PodTarget } from './pod.js';

const TEMPLATE_PATHS: Readonly<Record<string, readonly string[]>> = {
  'v1/Pod': [],
  'v1/ReplicationController': ['spec', 'template'],
  'apps/v1/Deployment': ['spec', 'template'],
  'apps/v1/StatefulSet': ['spec', 'template'],
  'apps/v1/DaemonSet': ['spec', 'template'],
  'apps/v1/ReplicaSet': ['spec', 'template'],
  'batch/v1/Job': ['spec', 'template'],
  'batch/v1/CronJob': ['spec', 'jobTemplate', 'spec', 'template'],
};

export interface Located {
  /** Path from the object to its pod (template): prefix of every patch op. */
  readonly path: readonly string[];
  readonly target: PodTarget;
}

/** The pod template of a handled kind, or undefined for every other object (passed through). */
export function locatePod(object: unknown): Located | undefined {
  if (!isObject(object)) return undefined;
  const key = `${String(object.apiVersion)}/${String(object.kind)}`;
  const path = TEMPLATE_PATHS[key];
  if (!path) return undefined;
  let node: unknown = object;
  for (const token of path) {
    node = asObject(node)?.[token];
  }
  const pod = asObject(node);
  const spec = asObject(pod?.spec);
  if (!pod || !spec) return undefined;
  const meta = asObject(object.metadata) ?? {};
  const name = typeof meta.name === 'string' ? meta.name : typeof meta.generateName === 'string' ? meta.generateName : '';
  const namespace = typeof meta.namespace === 'string' && meta.namespace !== '' ? meta.namespace : 'default';
  const kind = String(object.kind);
  return {
    path,
    target: {
      metadata: asObject(pod.metadata) ?? {},
      hasMetadata: isObject(pod.metadata),
      spec,
      workload: { apiVersion: String(object.apiVersion), kind, name, namespace },
      subject: `${kind} "${namespace}/${name}"`,
    },
  };
}

export function isList(object: unknown): object is JsonObject & { items: unknown[] } {
  return isObject(object) && object.apiVersion === 'v1' && object.kind === 'List' && Array.isArray(object.items);
}
