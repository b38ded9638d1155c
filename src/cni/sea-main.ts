/**
 * The CNI plugin's main: the asset the single executable runs when it is started as
 * meshcap-cni (src/cli/sea-capture.ts). `process.argv` is [exe, exe-as-typed, ...args]
 * in a Node SEA, and the program to re-enter is the executable itself.
 */
import { cniEntry } from './entry.js';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

void cniEntry({
  argv: process.argv.slice(2),
  env: process.env,
  self: [process.execPath],
  readStdin,
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
}).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`meshcap-cni: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
