/**
 * What the installed meshcap-cni executable does: the CNI protocol when the
 * runtime calls it, or the in-netns half when the plugin re-enters itself
 * under nsenter. Shared by the single executable (src/cni/sea-main.ts) and
 * `meshcap cni plugin` from a checkout.
 */
import { realSystem } from '../backend/system.js';
import { runChild } from './netns-child.js';
import { runPlugin } from './plugin.js';

export interface EntryIo {
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly self: readonly string[];
  readonly readStdin: () => Promise<string>;
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

export async function cniEntry(io: EntryIo): Promise<number> {
  if (io.argv[0] === '__netns') {
    const outcome = await runChild(io.argv[1] ?? '', io.argv.slice(2), io.env, io.stderr);
    io.stdout(`${JSON.stringify(outcome)}\n`);
    return outcome.ok ? 0 : 1;
  }
  if (io.env.CNI_COMMAND === undefined) {
    io.stderr('meshcap-cni is a CNI plugin: the container runtime runs it with CNI_COMMAND set (see the CNI spec). Install it with `meshcap cni install`.\n');
    return 1;
  }
  const stdin = io.env.CNI_COMMAND === 'VERSION' && process.stdin.isTTY ? '' : await io.readStdin();
  return runPlugin({ env: io.env, stdin, stdout: io.stdout, stderr: io.stderr, sys: realSystem(io.env), self: io.self });
}
