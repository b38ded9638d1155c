/**
 * The node side of CNI mode: put the plugin executable in the bin dir and the
 * entry in the runtime's network config, and take them out again. Every write
 * is a temporary file renamed into place, so the runtime never reads half a
 * file; nothing is rewritten when it already holds the right bytes.
 */
import { createHash } from 'node:crypto';
import { chmodSync, closeSync, copyFileSync, existsSync, fsyncSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { ConfigFileError, type Edit, type EntryOptions, entryState, insertEntry, orderConfigFiles, OWNED_FILE, ownedConfig, pluginTypes, removeEntry, STANDALONE_FILE, standaloneConfig } from './conflist.js';
import { PLUGIN_TYPE } from './spec.js';

export const PLUGIN_FILE = PLUGIN_TYPE;
const TEMP_PREFIX = `.${PLUGIN_FILE}.tmp.`;

export class InstallError extends Error {
  constructor(
    message: string,
    readonly fix: string,
  ) {
    super(message);
    this.name = 'InstallError';
  }
}

const hashes = new Map<string, { key: string; hash: string }>();

/** The file's hash, recomputed only when its inode, size or mtime changed (the agent checks ~100 MB twice a second). */
export function sha256(path: string): string | undefined {
  const stat = statSync(path, { throwIfNoEntry: false });
  if (!stat?.isFile()) return undefined;
  const key = `${stat.ino}:${stat.size}:${stat.mtimeMs}`;
  const cached = hashes.get(path);
  if (cached?.key === key) return cached.hash;
  try {
    const hash = createHash('sha256').update(readFileSync(path)).digest('hex');
    hashes.set(path, { key, hash });
    return hash;
  } catch {
    return undefined;
  }
}

function atomicWrite(path: string, text: string, mode: number): void {
  const temp = join(path, '..', `.meshcap-${basename(path)}.tmp.${process.pid}`);
  const fd = openSync(temp, 'w', mode);
  try {
    writeFileSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(temp, mode);
  renameSync(temp, path);
}

/** Copies the plugin in (temp file + rename, stale temp files from a crash removed). Returns whether it changed. */
export function installBinary(source: string, binDir: string): boolean {
  if (!existsSync(source)) {
    throw new InstallError(`the plugin executable ${source} does not exist`, "build it with 'npm run build:sea' (or run 'meshcap cni install' from the meshcap image, which is that executable)");
  }
  if (!existsSync(binDir)) throw new InstallError(`the CNI bin dir ${binDir} does not exist`, 'create it, or pass the bin dir your runtime uses (containerd: bin_dir in its CRI config)');
  for (const name of readdirSync(binDir)) if (name.startsWith(TEMP_PREFIX)) rmSync(join(binDir, name), { force: true });
  const target = join(binDir, PLUGIN_FILE);
  if (sha256(target) === sha256(source)) return false;
  const temp = join(binDir, `${TEMP_PREFIX}${process.pid}`);
  copyFileSync(source, temp);
  const fd = openSync(temp, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(temp, 0o755);
  renameSync(temp, target);
  return true;
}

export interface ConfFile {
  readonly name: string;
  readonly path: string;
  readonly text: string;
}

export function listConfigs(confDir: string): ConfFile[] {
  let names: string[];
  try {
    names = readdirSync(confDir);
  } catch (error) {
    throw new InstallError(`cannot read the CNI conf dir ${confDir}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, 'pass the conf dir your runtime uses (containerd: conf_dir in its CRI config)');
  }
  return orderConfigFiles(names)
    .map((name) => ({ name, path: join(confDir, name) }))
    .filter((f) => statSync(f.path, { throwIfNoEntry: false })?.isFile())
    .map((f) => ({ ...f, text: readFileSync(f.path, 'utf8') }));
}

export type ConfigOutcome =
  | { readonly kind: 'no-config' }
  | { readonly kind: 'unchanged'; readonly file: string }
  | { readonly kind: 'inserted'; readonly file: string; readonly converted?: string };

/**
 * chained: the entry goes into the primary's first config (Istio's default);
 * owned: meshcap writes 00-meshcap.conflist, the primary's plugins plus the entry, and follows the primary;
 * standalone: meshcap-cni as its own network for Multus (ZZZ-meshcap-cni.conf, referenced by a NAD).
 */
export type ConfigMode = 'chained' | 'owned' | 'standalone';
export const CONFIG_MODES: readonly ConfigMode[] = ['chained', 'owned', 'standalone'];

export type ConfigPlan =
  | { readonly kind: 'no-config' }
  | { readonly kind: 'edit'; readonly path: string; readonly edit: Edit };

/** The primary's config: the first in libcni order that is not meshcap's own file. */
function primaryOf(confDir: string): ConfFile | undefined {
  return listConfigs(confDir).find((f) => f.name !== OWNED_FILE && f.name !== STANDALONE_FILE);
}

function whole(path: string, current: string | undefined, text: string): ConfigPlan {
  return { kind: 'edit', path, edit: { file: path, text, remove: undefined, changed: current !== text } };
}

/** Reads and checks what the mode needs, changing nothing (an unusable file throws ConfigFileError). */
export function planConfig(confDir: string, options: EntryOptions = {}, mode: ConfigMode = 'chained'): ConfigPlan {
  if (mode === 'standalone') {
    // Alone in the dir it would become the runtime's only network: wait for the primary, as in the other modes.
    if (!primaryOf(confDir)) return { kind: 'no-config' };
    const path = join(confDir, STANDALONE_FILE);
    return whole(path, existsSync(path) ? readFileSync(path, 'utf8') : undefined, standaloneConfig(options));
  }
  if (mode === 'owned') {
    const primary = primaryOf(confDir);
    if (!primary) return { kind: 'no-config' };
    const path = join(confDir, OWNED_FILE);
    return whole(path, existsSync(path) ? readFileSync(path, 'utf8') : undefined, ownedConfig(primary.path, primary.text, options));
  }
  const first = listConfigs(confDir)[0];
  if (!first) return { kind: 'no-config' };
  return { kind: 'edit', path: first.path, edit: insertEntry(first.path, first.text, options) };
}

/** One entry, last, in the first config; a `.conf` becomes a `.conflist` (written first, then the `.conf` removed). */
export function commitConfig(plan: ConfigPlan): ConfigOutcome {
  if (plan.kind === 'no-config') return plan;
  const { edit, path } = plan;
  if (!edit.changed) return { kind: 'unchanged', file: path };
  atomicWrite(edit.file, edit.text, existsSync(path) ? statSync(path).mode & 0o777 : 0o644);
  if (edit.remove) rmSync(edit.remove, { force: true });
  return { kind: 'inserted', file: edit.file, ...(edit.remove ? { converted: edit.remove } : {}) };
}

/** Never creates a config: with none, pods must not get a network before the primary CNI writes its own. */
export function installConfig(confDir: string, options: EntryOptions = {}, mode: ConfigMode = 'chained'): ConfigOutcome {
  return commitConfig(planConfig(confDir, options, mode));
}

/** Entries out of every config first (a config naming a missing binary blocks every pod), then the executable. */
export function uninstall(confDir: string, binDir: string): { configs: string[]; binary: boolean } {
  const configs: string[] = [];
  // meshcap's own files (owned and standalone modes) go whole.
  for (const name of [OWNED_FILE, STANDALONE_FILE]) {
    const path = join(confDir, name);
    if (!existsSync(path)) continue;
    rmSync(path, { force: true });
    configs.push(path);
  }
  for (const file of listConfigs(confDir)) {
    let edit;
    try {
      edit = removeEntry(file.path, file.text);
    } catch (error) {
      if (error instanceof ConfigFileError) continue; // not ours to repair; it holds no entry we could parse
      throw error;
    }
    if (!edit.changed) continue;
    atomicWrite(file.path, edit.text, statSync(file.path).mode & 0o777);
    configs.push(file.path);
  }
  const target = join(binDir, PLUGIN_FILE);
  const binary = existsSync(target);
  rmSync(target, { force: true });
  for (const name of existsSync(binDir) ? readdirSync(binDir) : []) if (name.startsWith(TEMP_PREFIX)) rmSync(join(binDir, name), { force: true });
  return { configs, binary };
}

export interface NodeCheck {
  readonly ready: boolean;
  /** What keeps the node from being ready. */
  readonly problems: readonly string[];
  /** Worth a warning, not a NotReady: e.g. an entry in a config the runtime does not read first. */
  readonly warnings: readonly string[];
  readonly firstFile: string | undefined;
}

/** What readiness means: the effective config holds the entry (per mode), and the binary is the one we ship. */
export function checkNode(confDir: string, binDir: string, source: string | undefined, mode: ConfigMode = 'chained'): NodeCheck {
  const problems: string[] = [];
  let configs: ConfFile[] = [];
  try {
    configs = listConfigs(confDir);
  } catch (error) {
    problems.push((error as Error).message);
  }
  const first = configs[0];
  if (mode === 'standalone') {
    const own = configs.find((c) => c.name === STANDALONE_FILE);
    if (!own) problems.push(`${join(confDir, STANDALONE_FILE)} is missing`);
    else if (own.text !== standaloneConfig()) problems.push(`${own.path} is not the standalone meshcap-cni config`);
  } else if (!first) problems.push(`no network config in ${confDir} (the primary CNI has not written one yet)`);
  else {
    const state = entryState(first.path, first.text);
    if (!state.ok) problems.push(state.problem);
    if (mode === 'owned') {
      if (first.name !== OWNED_FILE) problems.push(`${first.path} sorts before ${OWNED_FILE}: the runtime reads it instead of meshcap's config`);
      const primary = configs.find((c) => c.name !== OWNED_FILE && c.name !== STANDALONE_FILE);
      if (primary) {
        const want = pluginTypes(primary.path, primary.text).filter((t) => t !== PLUGIN_TYPE);
        const have = pluginTypes(first.path, first.text);
        const lost = want.filter((t) => !have.includes(t));
        if (lost.length > 0) problems.push(`${first.path} lacks the primary's plugin${lost.length === 1 ? '' : 's'} ${lost.join(', ')} (from ${primary.path})`);
      }
    }
  }
  const chainedElsewhere = configs.slice(mode === 'standalone' ? 0 : 1).filter((c) => c.name !== STANDALONE_FILE && pluginTypes(c.path, c.text).includes(PLUGIN_TYPE));
  const warnings = chainedElsewhere.map((other) => `${other.path} also holds a ${PLUGIN_TYPE} entry (a runtime or Multus reading both would capture twice; remove it)`);
  const target = join(binDir, PLUGIN_FILE);
  const installed = sha256(target);
  if (!installed) problems.push(`${target} is missing`);
  else if (source && installed !== sha256(source)) problems.push(`${target} is not the plugin this agent ships (hash differs)`);
  return { ready: problems.length === 0, problems, warnings, firstFile: mode === 'standalone' ? join(confDir, STANDALONE_FILE) : first?.path };
}
