/**
 * Offline validation against the Kubernetes API schemas. kubernetes-models
 * ships validators generated from the official OpenAPI spec (types, required
 * fields, enums, formats); the spec itself does not forbid unknown fields, so
 * a typo such as `readinesProbe` would pass. The strict field check below fills
 * that gap from the same source: the field lists of the generated declaration
 * files (one interface per OpenAPI definition).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './paths.js';

interface Field {
  readonly ref?: string;
  readonly shape: 'object' | 'array' | 'map';
}

const MODELS = join(REPO_ROOT, 'node_modules', 'kubernetes-models');
const APIMACHINERY = join(REPO_ROOT, 'node_modules', '@kubernetes-models', 'apimachinery');

let definitions: Map<string, Map<string, Field>> | undefined;

function* declarationFiles(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === '_schemas' || entry.name === 'node_modules') continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* declarationFiles(path);
    else if (entry.name.endsWith('.d.ts')) yield path;
  }
}

/** Definition name (e.g. IIoK8sApiCoreV1Container) -> field -> what it refers to. */
function loadDefinitions(): Map<string, Map<string, Field>> {
  if (definitions) return definitions;
  definitions = new Map();
  for (const file of [...declarationFiles(MODELS), ...declarationFiles(APIMACHINERY)]) {
    const text = readFileSync(file, 'utf8');
    const alias = /export type \{ I(\w+) as (IIoK8s\w+)/.exec(text);
    if (!alias) continue;
    const start = text.indexOf(`export interface I${alias[1]} `);
    if (start === -1) continue;
    const body = text.slice(text.indexOf('{', start) + 1, text.indexOf('\n}', start));
    const fields = new Map<string, Field>();
    // Top-level members are indented by 4; multi-line map types continue at deeper indentation.
    const members = body.split(/\n(?= {4}")/);
    for (const member of members) {
      const match = /^\s*"([^"]+)"\??: ([\s\S]*?);?\s*$/.exec(member.replace(/\/\*\*[\s\S]*?\*\//g, ''));
      if (!match) continue;
      const type = match[2]!.trim();
      const ref = /IIoK8s\w+/.exec(type)?.[0];
      fields.set(match[1]!, { ref, shape: type.startsWith('Array<') ? 'array' : type.startsWith('{') ? 'map' : 'object' });
    }
    definitions.set(alias[2]!, fields);
  }
  return definitions;
}

/** Paths of fields the schema does not define, e.g. `spec.template.spec.containers[0].readinesProbe`. */
export function unknownFields(value: unknown, definition: string, path = ''): string[] {
  const defs = loadDefinitions();
  const fields = defs.get(definition);
  if (!fields || value === null || typeof value !== 'object' || Array.isArray(value)) return [];
  const problems: string[] = [];
  for (const [key, child] of Object.entries(value)) {
    const field = fields.get(key);
    const here = path ? `${path}.${key}` : key;
    if (!field) {
      problems.push(here);
      continue;
    }
    if (!field.ref) continue;
    if (field.shape === 'array' && Array.isArray(child)) child.forEach((item, i) => problems.push(...unknownFields(item, field.ref!, `${here}[${i}]`)));
    else if (field.shape === 'map' && child && typeof child === 'object') {
      for (const [k, item] of Object.entries(child)) problems.push(...unknownFields(item, field.ref, `${here}.${k}`));
    } else problems.push(...unknownFields(child, field.ref, here));
  }
  return problems;
}

/** kubernetes-models module path and definition name for an apiVersion/kind. */
function locate(apiVersion: string, kind: string): { module: string; definition: string } {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  const module = group === '' ? `kubernetes-models/${version}/${kind}` : `kubernetes-models/${group}/${version}/${kind}`;
  const groupName = group === ''
    ? 'Core'
    : group!.replace(/\.k8s\.io$/, '').replace(/\.authorization$/, '').split('.').map((p) => p[0]!.toUpperCase() + p.slice(1)).join('');
  const definition = `IIoK8sApi${groupName}${version![0]!.toUpperCase()}${version!.slice(1)}${kind}`;
  return { module, definition };
}

export interface Validation {
  readonly errors: readonly string[];
}

/** Validate one object: generated schema validator + strict field names. */
export async function validateObject(object: Record<string, unknown>): Promise<Validation> {
  const apiVersion = String(object.apiVersion);
  const kind = String(object.kind);
  const { module, definition } = locate(apiVersion, kind);
  let Model: new (data: unknown) => { validate(): void };
  try {
    const loaded = (await import(module)) as Record<string, unknown>;
    Model = loaded[kind] as typeof Model;
  } catch {
    return { errors: [`no schema for ${apiVersion} ${kind}`] };
  }
  const errors: string[] = [];
  try {
    new Model(object).validate();
  } catch (error) {
    errors.push((error as Error).message);
  }
  if (!loadDefinitions().has(definition)) errors.push(`no field list for ${definition}`);
  for (const path of unknownFields(object, definition)) errors.push(`unknown field ${path}`);
  return { errors };
}
