/**
 * RFC 6902 JSON Patch produced by the injection engine: the difference between
 * the pod as received and the pod as injected. Ops are deliberately coarse and
 * few (whole list items, whole map keys) so the API server, `meshcap inject`
 * (which applies them to the YAML document) and a reinvocation all read them
 * the same way. Pure.
 */
import { type Json, type JsonObject, deepEqual, isObject } from './json.js';

export type PatchOp =
  | { readonly op: 'add'; readonly path: string; readonly value: Json }
  | { readonly op: 'replace'; readonly path: string; readonly value: Json }
  | { readonly op: 'remove'; readonly path: string };

/** RFC 6901 escaping of one reference token. */
export function escapePointer(token: string): string {
  if (!token.includes('~') && !token.includes('/')) return token;
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

export function pointer(tokens: readonly (string | number)[]): string {
  let out = '';
  for (const token of tokens) out += `/${typeof token === 'number' ? token : escapePointer(token)}`;
  return out;
}

/** Ops turning the string map at `path` (absent when undefined) into `after`. */
export function diffMap(path: readonly string[], before: JsonObject | undefined, after: JsonObject | undefined): PatchOp[] {
  if (deepEqual(before, after)) return [];
  if (after === undefined) return [{ op: 'remove', path: pointer(path) }];
  if (before === undefined) return [{ op: 'add', path: pointer(path), value: after }];
  const ops: PatchOp[] = [];
  for (const key of Object.keys(before)) {
    if (!Object.hasOwn(after, key)) ops.push({ op: 'remove', path: pointer([...path, key]) });
  }
  for (const [key, value] of Object.entries(after)) {
    if (!Object.hasOwn(before, key)) ops.push({ op: 'add', path: pointer([...path, key]), value });
    else if (!deepEqual(before[key], value)) ops.push({ op: 'replace', path: pointer([...path, key]), value });
  }
  return ops;
}

function nameOf(item: Json | undefined): string | undefined {
  return isObject(item) && typeof item.name === 'string' ? item.name : undefined;
}

/** The same named thing (a container, a volume), possibly changed. */
function sameNamed(a: Json | undefined, b: Json | undefined): boolean {
  return isObject(a) && isObject(b) && typeof a.name === 'string' && a.name === b.name;
}

/**
 * Ops turning the list at `path` into `after`. Items of `before` that appear in
 * `after` in the same relative order, unchanged or as the same named item, are
 * kept; the others are removed (from the end, so indexes stay valid) and the
 * new ones inserted in ascending order; a kept item that changed (an app
 * container whose probes were rewritten) is then patched key by key at its
 * final index. User containers are never reordered by injection, so the
 * user's own items are always kept and only injected items move.
 */
export function diffList(path: readonly string[], before: Json[] | undefined, after: Json[] | undefined): PatchOp[] {
  if (deepEqual(before, after)) return [];
  if (after === undefined || after.length === 0) return before === undefined ? [] : [{ op: 'remove', path: pointer(path) }];
  if (before === undefined || before.length === 0) {
    const ops: PatchOp[] = before === undefined ? [] : [{ op: 'remove', path: pointer(path) }];
    return [...ops, { op: 'add', path: pointer(path), value: after }];
  }
  const keptBefore = new Set<number>();
  const keptAfter = new Set<number>();
  const changed: [number, number][] = [];
  // Candidates by name: an item can only equal, or be the same named thing as, an item of its own name
  // (unnamed ones form one group). Keeps the greedy in-order match linear for named lists.
  const groups = new Map<string | undefined, number[]>();
  before.forEach((item, k) => {
    const name = nameOf(item);
    const group = groups.get(name);
    if (group) group.push(k);
    else groups.set(name, [k]);
  });
  const next = new Map<string | undefined, number>();
  let j = 0;
  for (let i = 0; i < after.length; i++) {
    const name = nameOf(after[i]);
    const group = groups.get(name);
    if (!group) continue;
    let at = next.get(name) ?? 0;
    while (at < group.length && group[at]! < j) at++;
    for (let g = at; g < group.length; g++) {
      const k = group[g]!;
      const equal = deepEqual(before[k], after[i]);
      if (equal || sameNamed(before[k], after[i])) {
        keptBefore.add(k);
        keptAfter.add(i);
        if (!equal) changed.push([k, i]);
        j = k + 1;
        at = g + 1;
        break;
      }
    }
    next.set(name, at);
  }
  const ops: PatchOp[] = [];
  for (let k = before.length - 1; k >= 0; k--) {
    if (!keptBefore.has(k)) ops.push({ op: 'remove', path: pointer([...path, k]) });
  }
  for (let i = 0; i < after.length; i++) {
    if (!keptAfter.has(i)) ops.push({ op: 'add', path: pointer([...path, i]), value: after[i]! });
  }
  for (const [k, i] of changed) ops.push(...diffMap([...path, String(i)], before[k] as JsonObject, after[i] as JsonObject));
  return ops;
}

/** Prefix every op's path (a pod template inside a workload). */
export function prefixOps(prefix: readonly (string | number)[], ops: readonly PatchOp[]): PatchOp[] {
  const head = pointer(prefix);
  return ops.map((op) => ({ ...op, path: head + op.path }));
}

export function isPatchOp(value: unknown): value is PatchOp {
  return isObject(value) && typeof value.path === 'string' && (value.op === 'add' || value.op === 'replace' || value.op === 'remove');
}
