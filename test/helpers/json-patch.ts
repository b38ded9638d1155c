/**
 * A small RFC 6902 applier (add, remove, replace, move, copy, test) for tests:
 * it checks the webhook's patches independently of the code that made them,
 * so it follows the RFC's rules rather than the engine's own helpers.
 */
type Value = unknown;

export class PatchError extends Error {
  override name = 'PatchError';
}

function parsePointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw new PatchError(`invalid JSON pointer ${JSON.stringify(path)}`);
  return path.slice(1).split('/').map((token) => token.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function container(doc: Value, tokens: string[], path: string): Value {
  let node = doc;
  for (const token of tokens) {
    if (Array.isArray(node)) {
      if (!/^(0|[1-9][0-9]*)$/.test(token) || Number(token) >= node.length) throw new PatchError(`${path}: no index ${token}`);
      node = node[Number(token)];
    } else if (node !== null && typeof node === 'object' && Object.hasOwn(node, token)) {
      node = (node as Record<string, Value>)[token];
    } else {
      throw new PatchError(`${path}: no member ${token}`);
    }
  }
  if (node === null || typeof node !== 'object') throw new PatchError(`${path}: parent is not a container`);
  return node;
}

function get(doc: Value, path: string): Value {
  const tokens = parsePointer(path);
  if (tokens.length === 0) return doc;
  const last = tokens.pop()!;
  const parent = container(doc, tokens, path);
  if (Array.isArray(parent)) {
    if (!/^(0|[1-9][0-9]*)$/.test(last) || Number(last) >= parent.length) throw new PatchError(`${path}: no index ${last}`);
    return parent[Number(last)];
  }
  if (!Object.hasOwn(parent as object, last)) throw new PatchError(`${path}: no member ${last}`);
  return (parent as Record<string, Value>)[last];
}

function add(doc: Value, path: string, value: Value): Value {
  const tokens = parsePointer(path);
  if (tokens.length === 0) return value;
  const last = tokens.pop()!;
  const parent = container(doc, tokens, path);
  if (Array.isArray(parent)) {
    const index = last === '-' ? parent.length : Number(last);
    if (!(last === '-' || /^(0|[1-9][0-9]*)$/.test(last)) || index > parent.length) throw new PatchError(`${path}: bad index`);
    parent.splice(index, 0, value);
  } else {
    Object.defineProperty(parent, last, { value, enumerable: true, writable: true, configurable: true });
  }
  return doc;
}

function remove(doc: Value, path: string): Value {
  const tokens = parsePointer(path);
  if (tokens.length === 0) throw new PatchError('cannot remove the root');
  const last = tokens.pop()!;
  const parent = container(doc, tokens, path);
  get(doc, path);
  if (Array.isArray(parent)) parent.splice(Number(last), 1);
  else delete (parent as Record<string, Value>)[last];
  return doc;
}

const equal = (a: Value, b: Value): boolean => JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
function canonical(value: Value): Value {
  if (Array.isArray(value)) return value.map(canonical);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.keys(value).sort().map((k) => [k, canonical((value as Record<string, Value>)[k])]));
  }
  return value;
}

export interface Operation {
  readonly op: string;
  readonly path: string;
  readonly value?: Value;
  readonly from?: string;
}

/** Applies the patch to a deep copy of the document; throws PatchError on any invalid op. */
export function applyPatch<T>(document: T, patch: readonly Operation[]): T {
  let doc: Value = structuredClone(document);
  for (const op of patch) {
    switch (op.op) {
      case 'add':
        doc = add(doc, op.path, structuredClone(op.value));
        break;
      case 'remove':
        doc = remove(doc, op.path);
        break;
      case 'replace':
        get(doc, op.path);
        doc = add(remove(doc, op.path), op.path, structuredClone(op.value));
        break;
      case 'move': {
        const value = get(doc, op.from!);
        doc = add(remove(doc, op.from!), op.path, value);
        break;
      }
      case 'copy':
        doc = add(doc, op.path, structuredClone(get(doc, op.from!)));
        break;
      case 'test':
        if (!equal(get(doc, op.path), op.value)) throw new PatchError(`test failed at ${op.path}`);
        break;
      default:
        throw new PatchError(`unknown op ${JSON.stringify(op.op)}`);
    }
  }
  return doc as T;
}
