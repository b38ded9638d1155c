/**
 * Network config files, pure: which one the runtime uses (libcni's order, as
 * containerd's max_conf_num = 1 reads it), and the meshcap-cni entry put in
 * last or taken out. Other plugins are carried over as parsed JSON objects,
 * untouched. Text in, text out: the shell does the reading and the renames.
 */
import { ANNOTATIONS_CAPABILITY, PLUGIN_TYPE } from './spec.js';

export const CONFIG_EXTENSIONS = ['.conf', '.conflist', '.json'] as const;

type Obj = Record<string, unknown>;

export class ConfigFileError extends Error {
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`);
    this.name = 'ConfigFileError';
  }
}

/** libcni's ConfFiles + sort.Strings: byte order, the three extensions only. */
export function orderConfigFiles(names: readonly string[]): string[] {
  return names.filter((name) => CONFIG_EXTENSIONS.some((ext) => name.endsWith(ext)) && !name.startsWith('.')).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

export interface ParsedConfig {
  /** The file holds a list (`plugins`), or a single plugin (`.conf`/`.json` without `plugins`). */
  readonly list: boolean;
  readonly name: string;
  readonly cniVersion: string | undefined;
  readonly plugins: readonly Obj[];
  readonly object: Obj;
}

/** Parses a config the way libcni does, with its reasons for refusing one. */
export function parseConfigFile(file: string, text: string): ParsedConfig {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ConfigFileError(file, `is not valid JSON (${(error as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ConfigFileError(file, 'is not a network config (not a JSON object)');
  const object = value as Obj;
  const isList = file.endsWith('.conflist') || Array.isArray(object.plugins);
  if (isList) {
    if (!Array.isArray(object.plugins) || object.plugins.length === 0) throw new ConfigFileError(file, 'is not a network config list (no "plugins" list)');
    const plugins = object.plugins as unknown[];
    plugins.forEach((plugin, i) => {
      if (typeof plugin !== 'object' || plugin === null || typeof (plugin as Obj).type !== 'string' || (plugin as Obj).type === '') {
        throw new ConfigFileError(file, `plugin ${i + 1} has no "type"`);
      }
    });
    if (typeof object.name !== 'string' || object.name === '') throw new ConfigFileError(file, 'is not a network config list (no "name")');
    return { list: true, name: object.name, cniVersion: typeof object.cniVersion === 'string' ? object.cniVersion : undefined, plugins: plugins as Obj[], object };
  }
  if (typeof object.type !== 'string' || object.type === '') throw new ConfigFileError(file, 'is not a network config (no "type")');
  return { list: false, name: typeof object.name === 'string' ? object.name : '', cniVersion: typeof object.cniVersion === 'string' ? object.cniVersion : undefined, plugins: [object], object };
}

export interface EntryOptions {
  /** Extra fields for the entry (non-default plugin settings). */
  readonly fields?: Readonly<Obj>;
}

export function meshcapEntry(options: EntryOptions = {}): Obj {
  return { type: PLUGIN_TYPE, capabilities: { [ANNOTATIONS_CAPABILITY]: true }, ...options.fields };
}

function render(object: Obj): string {
  return `${JSON.stringify(object, null, 2)}\n`;
}

const isMeshcap = (plugin: Obj) => plugin.type === PLUGIN_TYPE;

/** The converted name of a single-plugin file: `10-bridge.conf` -> `10-bridge.conflist`. */
export function listFileName(file: string): string {
  return file.replace(/\.(conf|json)$/, '.conflist');
}

export interface Edit {
  /** The file to write (the same one, or the .conflist a .conf becomes). */
  readonly file: string;
  readonly text: string;
  /** A .conf converted to a list: this file is removed after the new one is in place. */
  readonly remove: string | undefined;
  readonly changed: boolean;
}

/** Exactly one meshcap-cni entry, last; a single-plugin file becomes a list. */
export function insertEntry(file: string, text: string, options: EntryOptions = {}): Edit {
  const parsed = parseConfigFile(file, text);
  const entry = meshcapEntry(options);
  if (!parsed.list) {
    const list: Obj = { cniVersion: parsed.cniVersion ?? '0.3.1', name: parsed.name || 'k8s-pod-network', plugins: [parsed.object, entry] };
    return { file: listFileName(file), text: render(list), remove: file, changed: true };
  }
  const others = parsed.plugins.filter((p) => !isMeshcap(p));
  const last = parsed.plugins[parsed.plugins.length - 1]!;
  const inPlace = others.length === parsed.plugins.length - 1 && isMeshcap(last) && JSON.stringify(last) === JSON.stringify(entry);
  if (inPlace) return { file, text, remove: undefined, changed: false };
  return { file, text: render({ ...parsed.object, plugins: [...others, entry] }), remove: undefined, changed: true };
}

/** Every meshcap-cni entry out; the rest as it was. */
export function removeEntry(file: string, text: string): Edit {
  const parsed = parseConfigFile(file, text);
  if (!parsed.plugins.some(isMeshcap)) return { file, text, remove: undefined, changed: false };
  return { file, text: render({ ...parsed.object, plugins: parsed.plugins.filter((p) => !isMeshcap(p)) }), remove: undefined, changed: true };
}

export type EntryState =
  | { readonly ok: true }
  | { readonly ok: false; readonly problem: string };

/** What the agent's readiness and doctor check: one entry, last, declaring the annotations capability. */
export function entryState(file: string, text: string): EntryState {
  let parsed: ParsedConfig;
  try {
    parsed = parseConfigFile(file, text);
  } catch (error) {
    return { ok: false, problem: (error as Error).message };
  }
  const count = parsed.plugins.filter(isMeshcap).length;
  if (count === 0) return { ok: false, problem: `${file} has no ${PLUGIN_TYPE} entry` };
  if (count > 1) return { ok: false, problem: `${file} has ${count} ${PLUGIN_TYPE} entries (one would apply the capture twice)` };
  const last = parsed.plugins[parsed.plugins.length - 1]!;
  if (!isMeshcap(last)) return { ok: false, problem: `${file}: the ${PLUGIN_TYPE} entry is not last (a later plugin would see the pod before capture)` };
  const caps = last.capabilities as Obj | undefined;
  if (caps?.[ANNOTATIONS_CAPABILITY] !== true) return { ok: false, problem: `${file}: the ${PLUGIN_TYPE} entry does not declare ${ANNOTATIONS_CAPABILITY}` };
  return { ok: true };
}

/** Plugin types a config references (for "a config references a missing binary"). */
export function pluginTypes(file: string, text: string): string[] {
  try {
    return parseConfigFile(file, text).plugins.map((p) => String(p.type));
  } catch {
    return [];
  }
}

/** Owned-file mode: a config of meshcap's own that sorts before the primary's, so the primary's rewrites never drop the entry. */
export const OWNED_FILE = '00-meshcap.conflist';
/** Standalone mode (Multus): meshcap-cni as a network of its own, named by a NetworkAttachmentDefinition; sorts last. */
export const STANDALONE_FILE = 'ZZZ-meshcap-cni.conf';
export const STANDALONE_NETWORK = 'meshcap-cni';

/** The primary's plugins (of a list or a single-plugin file) plus the entry, under the primary's name and version. */
export function ownedConfig(primaryFile: string, primaryText: string, options: EntryOptions = {}): string {
  const parsed = parseConfigFile(primaryFile, primaryText);
  const plugins = parsed.plugins.filter((p) => !isMeshcap(p));
  return render({ cniVersion: parsed.cniVersion ?? '0.3.1', name: parsed.name || 'k8s-pod-network', plugins: [...plugins, meshcapEntry(options)] });
}

export function standaloneConfig(options: EntryOptions = {}): string {
  return render({ cniVersion: '1.0.0', name: STANDALONE_NETWORK, ...meshcapEntry(options) });
}
