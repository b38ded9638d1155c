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
import { silentLogger } from '../log.js';
import { runCapture } from '../reconcile/engine.js';
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
  markSingleExecutable();
  // By the name it is installed under in the CNI bin dir, it is the plugin (argv is the runtime's).
  if (basename(process.execPath) === PLUGIN_TYPE) return runAsset(CNI_PLUGIN);
  // [exe, name-started-by, ...args]
  const [name, ...rest] = process.argv.slice(2);
  if ((name === '-e' || name === '--eval') && rest[0] !== undefined) return evalLikeNode(rest[0], rest.slice(1));
  if (name === undefined || !CAPTURE.has(name)) return runAsset(WHOLE_CLI);
  void captureCommand(name)(rest, processContext()).then((code) => {
    process.exitCode = code;
  });
}

/**
 * A System that answers the engine with canned outputs and touches nothing: an empty namespace,
 * then the rules it was given back. Only the snapshot build uses it (below).
 */
function trainingSystem(): System {
  const real = realSystem({});
  let restored = '';
  return {
    readFile: (path) => real.readFile(path),
    readBytes: (path) => real.readBytes(path),
    readLink: (path) => real.readLink(path),
    which: (name) => `/usr/sbin/${name}`,
    run: async (file, args, options = {}): Promise<RunResult> => {
      const tool = basename(file);
      let stdout = '';
      if (args[0] === '--version') stdout = `${tool} v1.8.9 (nf_tables)\n`;
      else if (tool.endsWith('-restore')) restored = typeof options.input === 'string' ? options.input : '';
      else if (tool.endsWith('-save')) stdout = tool.startsWith('ip6') ? '' : restored;
      else if (tool === 'nft' && args.join(' ') === 'list tables') stdout = restored ? 'table ip nat\n' : '';
      return { file, args, code: 0, signal: null, stdout, stderr: '', notFound: false };
    },
  };
}

/**
 * A first apply and a re-run against the training System, at build time: the read, plan, restore
 * and read-back code is then compiled in the snapshot too, not only the dry run's. Outcomes are
 * ignored (the canned save is not iptables' exact text); what counts is the code that ran.
 */
async function trainApply(istioInit: readonly string[]): Promise<void> {
  try {
    const sys = trainingSystem();
    const config = parseCaptureConfig(istioInit, {}, readHostFacts(sys));
    for (let round = 0; round < 2; round++) await runCapture(config, { sys, log: silentLogger }).catch(() => undefined);
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
  void trainApply(istioInit);
  snapshot.setDeserializeMainFunction(run);
} else {
  run();
}
