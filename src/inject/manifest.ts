/**
 * `meshcap inject` on manifest text: multi-document YAML and `List`s, each
 * handled workload injected, everything else (other kinds, skipped and
 * unchanged documents) copied through byte for byte. Injected documents are
 * edited in place in the YAML tree, by applying the same JSON Patch the
 * webhook returns, so comments and key order of the user's text survive.
 * Pure: text in, text and warnings out.
 */
import YAML, {
  type Alias,
  type Document,
  isAlias,
  isCollection,
  isMap,
  isNode,
  isPair,
  isScalar,
  isSeq,
  type Node as YamlNode,
  Pair,
  type YAMLMap,
  type YAMLSeq,
} from 'yaml';
import { ConfigError } from '../config/parse.js';
import { type PatchOp, prefixOps } from './patch.js';
import { injectPod } from './pod.js';
import type { InjectSettings } from './settings.js';
import { isList, locatePod, unhandledWorkload } from './workloads.js';

export interface ManifestResult {
  readonly text: string;
  readonly warnings: readonly string[];
  readonly injected: number;
  readonly skipped: number;
}

export function injectManifests(text: string, settings: InjectSettings): ManifestResult {
  // Warnings (a collection used as a key, say) are not printed: such documents are refused below with a message.
  const docs = YAML.parseAllDocuments(text, { logLevel: 'error' });
  if (!Array.isArray(docs)) return { text, warnings: [], injected: 0, skipped: 0 };
  const warnings: string[] = [];
  let injected = 0;
  let skipped = 0;
  const edits: { start: number; end: number; replacement: string }[] = [];

  docs.forEach((doc, index) => {
    const error = doc.errors[0];
    if (error) {
      throw new ConfigError('manifest', `document ${index + 1}`, `is not valid YAML: ${error.message.split('\n')[0]}`, 'fix the YAML', '');
    }
    if (!doc.contents) return;
    let object: unknown;
    try {
      object = doc.toJS({ maxAliasCount: 100 });
      // A self-referencing alias gives a cyclic value no Kubernetes object can be.
      JSON.stringify(object);
    } catch (caught) {
      throw new ConfigError('manifest', `document ${index + 1}`, `cannot be read: ${(caught as Error).message.split('\n')[0]}`, 'remove cyclic or excessive YAML aliases', '');
    }
    const items = isList(object) ? object.items : [object];
    for (const item of items) {
      const unhandled = locatePod(item) ? undefined : unhandledWorkload(item);
      if (unhandled) warnings.push(`document ${index + 1}: ${unhandled}`);
    }
    const targets = isList(object)
      ? object.items.flatMap((item, i) => {
          const located = locatePod(item);
          return located ? [{ ...located, path: ['items', String(i), ...located.path] }] : [];
        })
      : [locatePod(object)].filter((l) => l !== undefined);
    const ops: PatchOp[] = [];
    for (const { path, target } of targets) {
      const outcome = injectPod(target, settings);
      if (outcome.kind === 'skipped') {
        warnings.push(outcome.reason);
        skipped++;
        continue;
      }
      injected++;
      ops.push(...prefixOps(path, outcome.ops));
    }
    if (ops.length === 0) return;
    const problem = uneditable(doc);
    if (problem) {
      throw new ConfigError('manifest', `document ${index + 1}`, problem, 'write the document as plain YAML 1.2 (what kubectl get -o yaml prints)', '');
    }
    applyToYaml(doc, ops);
    const contents = doc.contents as YamlNode;
    const [start, end] = [contents.range![0], contents.range![1]];
    edits.push({ start, end, replacement: renderNode(contents, text.slice(start, end).endsWith('\n')) });
  });

  let out = '';
  let at = 0;
  for (const edit of edits) {
    out += text.slice(at, edit.start) + edit.replacement;
    at = edit.end;
  }
  out += text.slice(at);
  return { text: out, warnings, injected, skipped };
}

/**
 * YAML that kubectl reads one way and an edit of the tree would change another
 * way, refused for documents that are injected (the others pass through
 * untouched): YAML 1.1 (kubectl reads `no` as false, a 1.2 rendering would
 * not), merge keys (kubectl merges `<<`, the tree keeps it as a key), and keys
 * that are aliases, collections, anchored or tagged (their duplicates and
 * cycles escape the parser's checks, and their text spans do not start where
 * the document's does).
 */
function uneditable(doc: Document): string | undefined {
  if (doc.directives?.yaml.version === '1.1') return 'is YAML 1.1 (%YAML 1.1), which meshcap does not edit';
  let problem: string | undefined;
  YAML.visit(doc, {
    Pair: (_key, pair) => {
      const key = pair.key;
      if (!YAML.isScalar(key)) problem = 'has a key that is an alias or a collection';
      else if (key.anchor || key.tag) problem = `has an anchor or a tag on the key ${JSON.stringify(String(key.value))}`;
      else if (key.value === '<<') problem = 'uses a merge key (<<), which kubectl expands and meshcap cannot edit through';
      return problem ? YAML.visit.BREAK : undefined;
    },
  });
  return problem;
}

/** The top node alone: its own leading and trailing comments stay where they are in the original text. */
function renderNode(node: YamlNode, trailingNewline: boolean): string {
  const holder = new YAML.Document();
  const { commentBefore, comment } = node;
  node.commentBefore = null;
  node.comment = null;
  holder.contents = node;
  const rendered = holder.toString({ indentSeq: false, lineWidth: 0 });
  node.commentBefore = commentBefore;
  node.comment = comment;
  return trailingNewline ? rendered : rendered.replace(/\n$/, '');
}

/**
 * RFC 6902 add / replace / remove on a YAML tree, for the ops the engine emits.
 * The result's data is the patched data whatever anchors and aliases the text
 * uses: an alias on a patch path is replaced by a private copy of what it
 * stands for before the copy is edited, and an anchored node that is edited
 * (or discarded) first gives every alias of it elsewhere a copy of its
 * original value, so the other references keep what they had.
 */
export function applyToYaml(doc: Document, ops: readonly PatchOp[]): void {
  for (const op of ops) {
    const tokens = op.path.split('/').slice(1).map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
    const last = tokens.pop();
    if (last === undefined) throw new Error(`internal: patch op on the document root: ${op.path}`);
    let parent: unknown = doc.contents;
    for (const token of tokens) {
      if (!isCollection(parent)) break;
      unshare(doc, parent);
      parent = ownChild(doc, parent, token);
    }
    if (isMap(parent)) {
      unshare(doc, parent);
      const at = pairIndex(doc, parent, last);
      const pair = at === -1 ? undefined : parent.items[at]!;
      if (pair) detach(doc, pair.value);
      if (op.op === 'remove') {
        if (at !== -1) parent.items.splice(at, 1);
      } else {
        const value = doc.createNode(op.value, { aliasDuplicateObjects: false });
        if (pair) pair.value = value;
        else parent.items.push(new Pair(doc.createNode(last), value));
      }
    } else if (isSeq(parent)) {
      unshare(doc, parent);
      const index = last === '-' ? parent.items.length : Number(last);
      if (op.op !== 'add') detach(doc, parent.items[index]);
      if (op.op === 'remove') parent.items.splice(index, 1);
      else if (op.op === 'add') parent.items.splice(index, 0, doc.createNode(op.value, { aliasDuplicateObjects: false }));
      else parent.items[index] = doc.createNode(op.value, { aliasDuplicateObjects: false });
    } else {
      throw new Error(`internal: patch path ${op.path} does not lead to a mapping or a list`);
    }
  }
}

/** The key of a pair as the data has it (an alias key reads as its anchor's scalar). */
function keyText(doc: Document, key: unknown): string | undefined {
  const node = isAlias(key) ? aliasTargets(doc).get(key) : key;
  if (isScalar(node)) return String(node.value);
  return node === null || node === undefined ? '' : undefined;
}

function pairIndex(doc: Document, map: YAMLMap, token: string): number {
  // Duplicate keys never get here: the document is refused as invalid YAML.
  return map.items.findIndex((pair) => keyText(doc, pair.key) === token);
}

/** The child at `token`, an alias there first replaced by a private copy of its target. */
function ownChild(doc: Document, parent: YAMLMap | YAMLSeq, token: string): unknown {
  if (isMap(parent)) {
    const pair = parent.items[pairIndex(doc, parent, token)];
    if (!pair) return undefined;
    if (isAlias(pair.value)) pair.value = copyOfAlias(pair.value, aliasTargets(doc));
    return pair.value;
  }
  const index = Number(token);
  const item = parent.items[index];
  if (isAlias(item)) parent.items[index] = copyOfAlias(item, aliasTargets(doc));
  return parent.items[index];
}

/**
 * An anchored node about to be edited: every alias of it becomes a copy of its
 * current value, and the anchor, then unused, is dropped (an anchor nothing
 * aliases is left as written).
 */
function unshare(doc: Document, node: YamlNode): void {
  if (!node.anchor) return;
  const targets = aliasTargets(doc);
  const aliases = new Set([...targets].filter(([, target]) => target === node).map(([alias]) => alias));
  if (aliases.size === 0) return;
  replaceAliases(doc, aliases, targets);
  node.anchor = undefined;
}

/** A node about to be replaced or removed: aliases elsewhere of anchors inside it get copies first. */
function detach(doc: Document, node: unknown): void {
  const inside = new Set<unknown>();
  let anchored = false;
  forEachNode(node, (n) => {
    inside.add(n);
    if (!isAlias(n) && n.anchor) anchored = true;
  });
  if (!anchored) return;
  const targets = aliasTargets(doc);
  const aliases = new Set([...targets].filter(([alias, target]) => inside.has(target) && !inside.has(alias)).map(([alias]) => alias));
  if (aliases.size > 0) replaceAliases(doc, aliases, targets);
}

/** Which anchored node each alias stands for: the last node before it with that anchor, as YAML resolves it. */
function aliasTargets(doc: Document): Map<Alias, YamlNode> {
  const anchors = new Map<string, YamlNode>();
  const targets = new Map<Alias, YamlNode>();
  forEachNode(doc.contents, (node) => {
    if (isAlias(node)) {
      const target = anchors.get(node.source);
      if (target) targets.set(node, target);
    } else if (node.anchor) {
      anchors.set(node.anchor, node);
    }
  });
  return targets;
}

/** Every node under `root` (itself included), in document order, map keys before their values. */
function forEachNode(root: unknown, visit: (node: YamlNode) => void): void {
  if (!isNode(root)) return;
  visit(root);
  if (!isCollection(root)) return;
  for (const item of root.items) {
    if (isPair(item)) {
      forEachNode(item.key, visit);
      forEachNode(item.value, visit);
    } else {
      forEachNode(item, visit);
    }
  }
}

/** Replaces the given aliases, wherever they are in the document, by copies of their targets. */
function replaceAliases(doc: Document, aliases: ReadonlySet<Alias>, targets: ReadonlyMap<Alias, YamlNode>): void {
  const swap = (node: unknown): unknown => {
    if (isAlias(node) && aliases.has(node)) return copyOfAlias(node, targets);
    if (isCollection(node)) {
      node.items = node.items.map((item) => {
        if (!isPair(item)) return swap(item);
        item.key = swap(item.key);
        item.value = swap(item.value);
        return item;
      });
    }
    return node;
  };
  doc.contents = swap(doc.contents) as YamlNode;
}

/** The value an alias stands for as a node of its own, with the alias's own comments. */
function copyOfAlias(alias: Alias, targets: ReadonlyMap<Alias, YamlNode>): YamlNode {
  const target = targets.get(alias);
  if (!target) throw new Error(`internal: alias *${alias.source} has no anchor`);
  const copy = materialize(target, targets, 0);
  copy.spaceBefore = alias.spaceBefore;
  copy.commentBefore = alias.commentBefore;
  copy.comment = alias.comment;
  if (isCollection(copy) && !copy.flow && alias.comment) {
    // `labels: *l # note`: a block collection has no line of its own to keep the note on; it heads the block.
    copy.commentBefore = alias.commentBefore ? `${alias.commentBefore}\n${alias.comment}` : alias.comment;
    copy.comment = undefined;
  }
  return copy;
}

/**
 * A deep copy of a node of the document, without anchors and with every alias
 * inside expanded, so it shares nothing and redefines no anchor. The document
 * was read with an alias budget (toJS maxAliasCount), so the expansion is bounded.
 */
function materialize(node: YamlNode, targets: ReadonlyMap<Alias, YamlNode>, depth: number): YamlNode {
  if (depth > 100) throw new Error('internal: YAML aliases nested too deep');
  if (isAlias(node)) return copyOfAlias(node, targets);
  const copy = node.clone() as YamlNode;
  copy.anchor = undefined;
  if (isCollection(node) && isCollection(copy)) {
    const inner = (item: unknown): unknown => (isNode(item) ? materialize(item, targets, depth + 1) : item);
    copy.items = node.items.map((item) => (isPair(item) ? new Pair(inner(item.key), inner(item.value)) : inner(item))) as typeof copy.items;
  }
  return copy;
}
