import { execFile } from 'node:child_process';

/** Runs one program with arguments (no shell) and reports how it ended; never rejects. */
export type Runner = (
  cmd: string,
  args: readonly string[],
) => Promise<{ code: number; stdout: string; stderr: string }>;

/** Exit code used when the program could not be started at all, as a shell would report it. */
export const NOT_FOUND_EXIT = 127;

/** Generous but bounded: a pod's JSON and a few log tails fit easily. */
const MAX_OUTPUT_BYTES = 64 * 1024 * 1024;

export const execRunner: Runner = (cmd, args) =>
  new Promise((resolve) => {
    execFile(cmd, [...args], { encoding: 'utf8', maxBuffer: MAX_OUTPUT_BYTES, windowsHide: true }, (error, stdout, stderr) => {
      if (error === null) {
        resolve({ code: 0, stdout, stderr });
        return;
      }
      const errno = (error as NodeJS.ErrnoException).code;
      if (errno === 'ENOENT') {
        resolve({ code: NOT_FOUND_EXIT, stdout: '', stderr: `${cmd}: executable file not found in PATH` });
        return;
      }
      // A non-zero exit carries a numeric code; anything else (signal, maxBuffer) counts as a plain failure.
      const code = typeof errno === 'number' ? errno : 1;
      resolve({ code, stdout: stdout ?? '', stderr: stderr || error.message });
    });
  });
