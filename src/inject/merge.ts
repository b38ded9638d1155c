/**
 * The part of Kubernetes strategic merge that injection needs: a user's own
 * `istio-proxy` / `istio-init` fields laid over the generated container. Maps
 * merge recursively, the lists Kubernetes merges by key merge by that key,
 * every other list and scalar is replaced. Pure.
 */
import { type Json, type JsonObject, isObject } from './json.js';

/** List fields merged by key in the core API (patchMergeKey), by field name. */
const MERGE_KEYS: Readonly<Record<string, string>> = {
  env: 'name',
  volumeMounts: 'mountPath',
  ports: 'containerPort',
  volumes: 'name',
  containers: 'name',
  initContainers: 'name',
};

export function strategicMerge(base: JsonObject, over: JsonObject): JsonObject {
  const out: JsonObject = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const current = Object.hasOwn(out, key) ? out[key] : undefined;
    const mergeKey = Object.hasOwn(MERGE_KEYS, key) ? MERGE_KEYS[key] : undefined;
    let merged: Json;
    if (mergeKey && Array.isArray(current) && Array.isArray(value)) merged = mergeByKey(current, value, mergeKey);
    else if (isObject(current) && isObject(value)) merged = strategicMerge(current, value);
    else merged = value;
    // Defined, not assigned: a "__proto__" key from the user's JSON stays a plain field, as JSON.parse made it.
    Object.defineProperty(out, key, { value: merged, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/**
 * Items of `over` replace (merged) same-keyed items of `base` in place; new
 * ones are appended. Indexed by key: a pod's lists can be long, and a webhook
 * must not do quadratic work on what a client sends.
 */
export function mergeByKey(base: readonly Json[], over: readonly Json[], key: string): Json[] {
  const out = [...base];
  const index = new Map<Json, number>();
  out.forEach((existing, i) => {
    const id = isObject(existing) ? existing[key] : undefined;
    // The first item with a key is the one a linear search would find.
    if (id !== undefined && !index.has(id)) index.set(id, i);
  });
  for (const item of over) {
    const id = isObject(item) ? item[key] : undefined;
    const at = id === undefined ? undefined : index.get(id);
    if (at === undefined) {
      if (id !== undefined) index.set(id, out.length);
      out.push(item);
    } else {
      out[at] = isObject(out[at]) && isObject(item) ? strategicMerge(out[at] as JsonObject, item) : item;
    }
  }
  return out;
}
