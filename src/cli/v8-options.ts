/**
 * V8 options for a capture run by the single executable (src/cli/sea-capture.ts).
 *
 * A capture lives a few hundred milliseconds at most, on nodes of two cores, beside the child
 * that writes the rules. TurboFan, V8's optimising compiler, compiles on a background thread:
 * on two cores that thread takes CPU from the restore child, and a one-shot run ends before the
 * optimised code pays back. Without it, 5000 excludes on iptables-nft applied ~18 ms sooner
 * (README, "Start-up and long lists"). The short apply and the re-run gained 0.1 to 0.17 of a
 * ratio when the machine was slow and nothing when it was fast; native nft did not move.
 *
 * Only options this node accepts are kept, decided when the executable is built: a node that
 * renamed one runs without it rather than printing an error at every pod start.
 */
import { spawnSync } from 'node:child_process';

export const CAPTURE_V8_OPTIONS: readonly string[] = ['--no-opt'];

/** The candidates `accepts` says yes to, as one string for v8.setFlagsFromString ('' when none). */
export function acceptedV8Options(candidates: readonly string[], accepts: (option: string) => boolean): string {
  return candidates.filter((option) => accepts(option)).join(' ');
}

/** Does `node OPTION -e ''` start cleanly? Node refuses an option V8 does not know (exit 9). */
export function nodeAccepts(execPath: string): (option: string) => boolean {
  return (option) => {
    const result = spawnSync(execPath, [option, '-e', ''], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, encoding: 'utf8' });
    return result.status === 0 && result.stderr === '';
  };
}
