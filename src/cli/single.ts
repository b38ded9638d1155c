/**
 * Entry of the single-file CommonJS build, dist/meshcap.cjs: bin/meshcap loads
 * it, and so does the single executable (src/cli/sea-capture.ts) for every
 * command but the capture.
 */
import { createRequire } from 'node:module';
import { main, processContext } from './main.js';
import { markSingleExecutable } from './self.js';

function isSingleExecutable(): boolean {
  try {
    return (createRequire('/')('node:sea') as { isSea(): boolean }).isSea();
  } catch {
    return false;
  }
}

function run(): void {
  // [node, script, ...args] for `node dist/meshcap.cjs`; [exe, name-started-by, ...args] in a single executable.
  const args = process.argv.slice(2);
  if (isSingleExecutable()) markSingleExecutable();
  void main(args, processContext()).then((code) => {
    process.exitCode = code;
  });
}

run();
