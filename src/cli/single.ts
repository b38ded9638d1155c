/**
 * Entry of the single-file CommonJS build (dist/meshcap.cjs, which bin/meshcap
 * loads) and of the single executable made from it (dist/sea/meshcap, with a
 * V8 startup snapshot; scripts/build-sea.mjs). In a snapshot build every module
 * is evaluated, and the capture path run once as a dry run, at build time: a
 * pod's start then deserialises compiled code instead of loading, compiling
 * and evaluating it (README, "Start-up").
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { runInThisContext } from 'node:vm';
import * as v8 from 'node:v8';
import { main, processContext } from './main.js';
import { markSingleExecutable } from './self.js';

function isSingleExecutable(): boolean {
  try {
    return (createRequire('/')('node:sea') as { isSea(): boolean }).isSea();
  } catch {
    return false;
  }
}

/**
 * `meshcap -e SCRIPT ARGS...` in a single executable behaves as `node -e`:
 * probes start `process.execPath -e <inline connect>` as another user, and
 * there process.execPath is meshcap itself.
 */
function evalLikeNode(script: string, rest: readonly string[]): void {
  process.argv = [process.execPath, ...rest];
  const requireFromCwd = createRequire(join(process.cwd(), '[eval]'));
  (runInThisContext(`(function (require) {${script}\n})`, { filename: '[eval]' }) as (r: NodeJS.Require) => void)(requireFromCwd);
}

function run(): void {
  // [node, script, ...args] for `node dist/meshcap.cjs`; [exe, name-started-by, ...args] in a single executable.
  const args = process.argv.slice(2);
  if (isSingleExecutable()) {
    markSingleExecutable();
    if ((args[0] === '-e' || args[0] === '--eval') && args[1] !== undefined) return evalLikeNode(args[1], args.slice(2));
  }
  void main(args, processContext()).then((code) => {
    process.exitCode = code;
  });
}

const snapshot = v8.startupSnapshot;
if (snapshot?.isBuildingSnapshot()) {
  // Compile the capture path into the snapshot: a dry run changes nothing and reads only PATH and /proc.
  const quiet = { ...processContext(), stdout: () => {}, stderr: () => {} };
  const istioInit = ['-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '', '-b', '*', '-d', '15090,15021,15020'];
  void main(['istio-iptables', '--dry-run', ...istioInit], quiet);
  void main(['istio-iptables', '--dry-run', '--native-nftables', ...istioInit], quiet);
  snapshot.setDeserializeMainFunction(run);
} else {
  run();
}
