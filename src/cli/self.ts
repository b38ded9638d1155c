/**
 * How to start this meshcap again (status --netns, the demo): `node script`
 * normally, the executable alone when meshcap runs as a single executable,
 * whose argv[1] is only the name it was started by.
 */
let singleExecutable = false;

/** Called by the single-executable entry at start-up. */
export function markSingleExecutable(): void {
  singleExecutable = true;
}

export function selfArgv(): string[] {
  return singleExecutable ? [process.execPath] : [process.execPath, process.argv[1]!];
}
