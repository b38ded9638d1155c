/**
 * Entry of the single executable (dist/sea/meshcap, scripts/build-sea.mjs).
 * Its V8 startup snapshot holds only the capture commands, istio-init's
 * `istio-iptables` and `apply`, evaluated and run once as dry runs at build
 * time: a pod's start deserialises them instead of loading, compiling and
 * evaluating meshcap, and a smaller heap deserialises faster than the whole
 * CLI would. Every other command runs the whole CLI, dist/meshcap.cjs beside
 * the executable, loaded from disk (README, "Start-up and long lists").
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { runInThisContext } from 'node:vm';
import * as v8 from 'node:v8';
import { captureCommand } from './capture.js';
import { processContext } from './process-context.js';
import { markSingleExecutable } from './self.js';

const CAPTURE = new Set(['istio-iptables', 'apply']);

/**
 * `meshcap -e SCRIPT ARGS...` behaves as `node -e`: probes as another user
 * start `process.execPath -e <inline connect>`, and here that is meshcap.
 */
function evalLikeNode(script: string, rest: readonly string[]): void {
  process.argv = [process.execPath, ...rest];
  const requireFromCwd = createRequire(join(process.cwd(), '[eval]'));
  (runInThisContext(`(function (require) {${script}\n})`, { filename: '[eval]' }) as (r: NodeJS.Require) => void)(requireFromCwd);
}

function run(): void {
  markSingleExecutable();
  // [exe, name-started-by, ...args]
  const [name, ...rest] = process.argv.slice(2);
  if ((name === '-e' || name === '--eval') && rest[0] !== undefined) return evalLikeNode(rest[0], rest.slice(1));
  if (name === undefined || !CAPTURE.has(name)) {
    // The whole CLI; it reads process.argv itself, and knows it runs in a single executable.
    createRequire(process.execPath)(join(dirname(process.execPath), '..', 'meshcap.cjs'));
    return;
  }
  void captureCommand(name)(rest, processContext()).then((code) => {
    process.exitCode = code;
  });
}

const snapshot = v8.startupSnapshot;
if (snapshot?.isBuildingSnapshot()) {
  // Compile the capture path into the snapshot: a dry run changes nothing and reads only PATH and /proc.
  const quiet = { ...processContext(), stdout: () => {}, stderr: () => {} };
  const istioInit = ['-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '', '-b', '*', '-d', '15090,15021,15020'];
  void captureCommand('istio-iptables')(['--dry-run', ...istioInit], quiet);
  void captureCommand('istio-iptables')(['--dry-run', '--native-nftables', ...istioInit], quiet);
  snapshot.setDeserializeMainFunction(run);
} else {
  run();
}
