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
    const current = out[key];
    const mergeKey = MERGE_KEYS[key];
    if (mergeKey && Array.isArray(current) && Array.isArray(value)) out[key] = mergeByKey(current, value, mergeKey);
    else if (isObject(current) && isObject(value)) out[key] = strategicMerge(current, value);
    else out[key] = value;
  }
  return out;
}

/** Items of `over` replace (merged) same-keyed items of `base` in place; new ones are appended. */
export function mergeByKey(base: readonly Json[], over: readonly Json[], key: string): Json[] {
  const out = [...base];
  for (const item of over) {
    const id = isObject(item) ? item[key] : undefined;
    const at = id === undefined ? -1 : out.findIndex((existing) => isObject(existing) && existing[key] === id);
    if (at === -1) out.push(item);
    else out[at] = isObject(out[at]) && isObject(item) ? strategicMerge(out[at] as JsonObject, item) : item;
  }
  return out;
}
