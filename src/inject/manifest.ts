/**
 * `meshcap inject` on manifest text: multi-document YAML and `List`s, each
 * handled workload injected, everything else (other kinds, skipped and
 * unchanged documents) copied through byte for byte. Injected documents are
 * edited in place in the YAML tree, by applying the same JSON Patch the
 * webhook returns, so comments and key order of the user's text survive.
 * Pure: text in, text and warnings out.
 */
import YAML, { type Document, isMap, isSeq, type Node as YamlNode } from 'yaml';
import { ConfigError } from '../config/parse.js';
import { type PatchOp, prefixOps } from './patch.js';
import { injectPod } from './pod.js';
import type { InjectSettings } from './settings.js';
import { isList, locatePod } from './workloads.js';

export interface ManifestResult {
  readonly text: string;
  readonly warnings: readonly string[];
  readonly injected: number;
  readonly skipped: number;
}

export function injectManifests(text: string, settings: InjectSettings): ManifestResult {
  const docs = YAML.parseAllDocuments(text);
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

/** RFC 6902 add / replace / remove on a YAML tree, for the ops the engine emits. */
export function applyToYaml(doc: Document, ops: readonly PatchOp[]): void {
  for (const op of ops) {
    const tokens = op.path.split('/').slice(1).map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
    const last = tokens.pop();
    if (last === undefined) throw new Error(`internal: patch op on the document root: ${op.path}`);
    let parent: unknown = doc.contents;
    for (const token of tokens) {
      parent = isMap(parent) ? parent.get(token, true) : isSeq(parent) ? parent.items[Number(token)] : undefined;
    }
    if (isMap(parent)) {
      if (op.op === 'remove') parent.delete(last);
      else parent.set(doc.createNode(last), doc.createNode(op.value, { aliasDuplicateObjects: false }));
    } else if (isSeq(parent)) {
      const index = last === '-' ? parent.items.length : Number(last);
      if (op.op === 'remove') parent.items.splice(index, 1);
      else if (op.op === 'add') parent.items.splice(index, 0, doc.createNode(op.value, { aliasDuplicateObjects: false }));
      else parent.items[index] = doc.createNode(op.value, { aliasDuplicateObjects: false });
    } else {
      throw new Error(`internal: patch path ${op.path} does not lead to a mapping or a list`);
    }
  }
}
