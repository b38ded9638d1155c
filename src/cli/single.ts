/**
 * Entry of the single-file CommonJS build (dist/meshcap.cjs) and of the single
 * executable made from it (dist/sea/meshcap, with a V8 startup snapshot). In
 * a snapshot build, every module is evaluated and the capture path is run once
 * as a dry run at build time, so a pod's start deserialises compiled code
 * instead of loading, compiling and evaluating it (see README, "Start-up").
 */
import * as v8 from 'node:v8';
import { main, processContext } from './main.js';

function run(): void {
  // [node, script, ...args] for `node dist/meshcap.cjs`; [exe, exe, ...args] in a single executable.
  void main(process.argv.slice(2), processContext()).then((code) => {
    process.exitCode = code;
  });
}

const snapshot = v8.startupSnapshot;
if (snapshot?.isBuildingSnapshot()) {
  // Compile the capture path into the snapshot: a dry run changes nothing and reads only PATH and /proc.
  const quiet = { ...processContext(), stdout: () => {}, stderr: () => {} };
  const warm = ['-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '', '-b', '*', '-d', '15090,15021,15020'];
  void main(['istio-iptables', '--dry-run', ...warm], quiet);
  void main(['istio-iptables', '--dry-run', '--native-nftables', ...warm], quiet);
  snapshot.setDeserializeMainFunction(run);
} else {
  run();
}
