/**
 * Entry of the single executable (dist/sea/meshcap, scripts/build-sea.mjs):
 * the one program the image ships and, copied as `meshcap-cni`, the CNI plugin
 * a node gets. It needs nothing beside it.
 *
 * Its V8 startup snapshot holds only the capture commands, istio-init's
 * `istio-iptables` and `apply`, evaluated and run once as dry runs at build
 * time: a pod's start deserialises them instead of loading, compiling and
 * evaluating meshcap, and a smaller heap deserialises faster than more code
 * would (the plugin in the snapshot cost the capture ~2 ms). The plugin and
 * every other command are SEA assets (dist/meshcap-cni.cjs, dist/meshcap.cjs)
 * with V8 code caches made at build time, compiled when run (README,
 * "Start-up and long lists").
 */
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { runInThisContext, Script } from 'node:vm';
import * as v8 from 'node:v8';
import { captureCommand } from './capture.js';
import { processContext } from './process-context.js';
import { markSingleExecutable } from './self.js';
import { readHostFacts } from '../backend/host.js';
import { realSystem, type RunResult, type System } from '../backend/system.js';
import { parseCaptureConfig } from '../config/parse.js';
import { buildRuleset } from '../rules/build.js';
import { type Family, type Ruleset, rulesForFamily } from '../rules/model.js';
import { desiredView } from '../state/iptables-view.js';
import type { CommandContext } from './context.js';
import { PLUGIN_TYPE } from '../cni/spec.js';

const CAPTURE = new Set(['istio-iptables', 'apply']);
/** The assets' names, as scripts/build-sea.mjs stores them; `<name>.cache` is its V8 code cache. */
const WHOLE_CLI = 'meshcap.cjs';
const CNI_PLUGIN = 'meshcap-cni.cjs';

interface SeaAssets {
  getAsset(key: string, encoding: string): string;
  getRawAsset(key: string): ArrayBuffer;
}

/**
 * `meshcap -e SCRIPT ARGS...` behaves as `node -e`: probes as another user
 * start `process.execPath -e <inline connect>`, and here that is meshcap.
 */
function evalLikeNode(script: string, rest: readonly string[]): void {
  process.argv = [process.execPath, ...rest];
  const requireFromCwd = createRequire(join(process.cwd(), '[eval]'));
  (runInThisContext(`(function (require) {${script}\n})`, { filename: '[eval]' }) as (r: NodeJS.Require) => void)(requireFromCwd);
}

/**
 * Runs one CommonJS asset as node runs a file. The asset is stored already
 * wrapped in the module function, the text its code cache was made from.
 */
function runAsset(name: string): void {
  const sea = createRequire(process.execPath)('node:sea') as SeaAssets;
  const filename = join(dirname(process.execPath), name);
  let cachedData: Buffer | undefined;
  try {
    cachedData = Buffer.from(sea.getRawAsset(`${name}.cache`));
  } catch {
    // No cache: compiled from source, a few ms slower.
  }
  const script = new Script(sea.getAsset(name, 'utf8'), { filename, ...(cachedData ? { cachedData } : {}) });
  const wrapper = script.runInThisContext() as (...args: unknown[]) => void;
  const module = { exports: {} };
  wrapper(module.exports, createRequire(filename), module, filename, dirname(filename));
}

function run(): void {
  if (process.env.MC_T) { (process as any)._rawDebug(`T ${performance.now().toFixed(2)} run`); process.on('exit', () => (process as any)._rawDebug(`T ${performance.now().toFixed(2)} exit`)); }
  if (process.env.MC_PROF) {
    const inspector = createRequire(process.execPath)('node:inspector');
    const session = new inspector.Session(); session.connect();
    session.post('Profiler.enable'); session.post('Profiler.setSamplingInterval', { interval: 25 }); session.post('Profiler.start');
    process.on('exit', () => session.post('Profiler.stop', (err: unknown, r: any) => { require('node:fs').writeFileSync(process.env.MC_PROF!, JSON.stringify(r.profile)); }));
  }
  markSingleExecutable();
  // By the name it is installed under in the CNI bin dir, it is the plugin (argv is the runtime's).
  if (basename(process.execPath) === PLUGIN_TYPE) return runAsset(CNI_PLUGIN);
  // [exe, name-started-by, ...args]
  const [name, ...rest] = process.argv.slice(2);
  if ((name === '-e' || name === '--eval') && rest[0] !== undefined) return evalLikeNode(rest[0], rest.slice(1));
  if (name === undefined || !CAPTURE.has(name)) return runAsset(WHOLE_CLI);
  void captureCommand(name)(rest, processContext()).then(async (code) => {
    process.exitCode = code;
    if (process.env.MC_TWICE) { (process as any)._rawDebug(`T ${performance.now().toFixed(2)} again`); await captureCommand(name)(rest, processContext()); (process as any)._rawDebug(`T ${performance.now().toFixed(2)} again-done`); }
  });
}

/** Built-in chains as iptables-save declares them, per table. */
const SAVED_BUILTINS: Record<string, readonly string[]> = {
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  raw: ['PREROUTING', 'OUTPUT'],
};

/** What iptables-nft-save prints once `ruleset` is in place: its format, header and trailer included. */
function savedText(ruleset: Ruleset, family: Family): string {
  const lines = ['# Generated by iptables-nft-save v1.8.9 (nf_tables) on Thu Jan  1 00:00:00 2026'];
  for (const [table, view] of desiredView(rulesForFamily(ruleset, family), family)) {
    lines.push(`*${table}`, ...(SAVED_BUILTINS[table] ?? []).map((chain) => `:${chain} ACCEPT [0:0]`));
    lines.push(...[...view.meshChains.keys()].map((chain) => `:${chain} - [0:0]`));
    for (const [chain, specs] of [...view.builtinRules, ...view.meshChains]) lines.push(...specs.map((spec) => `-A ${chain} ${spec}`));
    lines.push('COMMIT');
  }
  return `${lines.join('\n')}\n# Completed on Thu Jan  1 00:00:00 2026\n`;
}

/**
 * A System that answers as a fresh pod's namespace would, through canned outputs, and touches
 * nothing: no rules, then, once restored, the rules `ruleset` makes, printed as iptables-nft-save
 * prints them. Only the snapshot build uses it (below). Its only real children are two
 * `node --version`, one blocking and one in the background, so that both ways of spawning are
 * compiled too.
 */
function trainingSystem(ruleset: Ruleset): System {
  const real = realSystem({ PATH: process.env.PATH }, { blocking: true });
  const podNetns = 'net:[4026532100]';
  let spawned = false;
  const restored = new Set<string>();
  return {
    // The machine's files, but not its namespace: the capture would rightly refuse that.
    readFile: (path) => (path.startsWith('/proc/2/') ? undefined : real.readFile(path)),
    readBytes: (path) => real.readBytes(path),
    readLink: (path) => (/^\/proc\/(self|1)\/ns\/net$/.test(path) ? podNetns : real.readLink(path)),
    which: (name) => `/usr/sbin/${name}`,
    run: async (file, args, options = {}): Promise<RunResult> => {
      if (!spawned) {
        spawned = true;
        await real.run(process.execPath, ['--version']);
        await real.run(process.execPath, ['--version'], { background: true });
      }
      const tool = basename(file);
      const family: Family = tool.startsWith('ip6') ? 'ipv6' : 'ipv4';
      let stdout = '';
      if (args[0] === '--version') stdout = `${tool} v1.8.9 (nf_tables)\n`;
      else if (tool.endsWith('-restore') && options.input) restored.add(family);
      else if (tool.endsWith('-save')) stdout = restored.has(family) ? savedText(ruleset, family) : '';
      else if (tool === 'nft' && args.join(' ') === 'list tables') stdout = [...restored].map((f) => `table ${f === 'ipv4' ? 'ip' : 'ip6'} nat\n`).join('');
      return { file, args, code: 0, signal: null, stdout, stderr: '', notFound: false };
    },
  };
}

/**
 * istio-init's first apply and its re-run, through the very command a pod runs, against the
 * training System, at build time: the read, plan, restore, read-back and logging code is then
 * compiled in the snapshot, not only the dry run's. Outcomes are ignored; what counts is the code
 * that ran.
 */
async function trainApply(istioInit: readonly string[], quiet: CommandContext): Promise<void> {
  try {
    const sys = trainingSystem(buildRuleset(parseCaptureConfig(istioInit, {}, readHostFacts(realSystem({})))));
    for (let round = 0; round < 2; round++) await captureCommand('istio-iptables', () => sys)(istioInit, quiet);
  } catch {
    // Nothing to train: the dry runs above still warmed the rest.
  }
}

const snapshot = v8.startupSnapshot;
if (snapshot?.isBuildingSnapshot()) {
  // Compile the capture path into the snapshot: a dry run changes nothing and reads only PATH and /proc.
  const quiet = { ...processContext(), stdout: () => {}, stderr: () => {} };
  const istioInit = ['-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '', '-b', '*', '-d', '15090,15021,15020'];
  void captureCommand('istio-iptables')(['--dry-run', ...istioInit], quiet);
  void captureCommand('istio-iptables')(['--dry-run', '--native-nftables', ...istioInit], quiet);
  void trainApply(istioInit, quiet);
  snapshot.setDeserializeMainFunction(run);
} else {
  run();
}
