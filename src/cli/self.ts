/**
 * How to start this meshcap again (status --netns, the demo): `node script`
 * normally, the executable alone when meshcap runs as a single executable,
 * whose argv[1] is only the name it was started by.
 */
import { realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';

let singleExecutable = false;

/** Called by the single-executable entry at start-up. */
export function markSingleExecutable(): void {
  singleExecutable = true;
}

/**
 * The single executable, which `meshcap cni install` copies as meshcap-cni (by that name it is the
 * plugin): this very program when it is one, else a checkout's build beside bin/meshcap or
 * dist/meshcap.cjs (both one level under the checkout), dist/sea/meshcap from `npm run build:sea`.
 */
export function singleExecutablePath(): string {
  if (singleExecutable) return process.execPath;
  return join(dirname(dirname(realpathSync(process.argv[1]!))), 'dist', 'sea', 'meshcap');
}

export function selfArgv(): string[] {
  return singleExecutable ? [process.execPath] : [process.execPath, process.argv[1]!];
}
