/**
 * The writer of a long capture (iptables-nft-restore, or `nft -f -`), started before its input
 * is known: its fork and start-up then happen beside the config's validation instead of after
 * the plan, when this process has grown (a few ms each with 5000 excludes). It is handed the
 * input once planned, or nothing: both tools, given an empty input, exit 0 without touching a
 * table. Nothing is written to it before a plan exists, so a capture that fails first changes
 * nothing through it.
 */
import { DeferredInput, type RunInput, type RunOptions, type RunResult, type System } from '../backend/system.js';

export class EarlyWriter {
  readonly #result: Promise<RunResult>;
  readonly #input = new DeferredInput();
  #used = false;

  constructor(
    sys: System,
    readonly file: string,
    readonly args: readonly string[],
    options: Omit<RunOptions, 'input' | 'background'>,
  ) {
    this.#result = sys.run(file, args, { ...options, background: true, input: this.#input });
    // Awaited by write(); a released writer's result is not looked at.
    this.#result.catch(() => undefined);
  }

  /** Whether this run is the writer: the same binary and arguments, not yet used. */
  takes(file: string, args: readonly string[]): boolean {
    return !this.#used && file === this.file && args.length === this.args.length && args.every((arg, i) => arg === this.args[i]);
  }

  /** Hands it the input (once): writing starts before this returns; the run's result. */
  write(input: RunInput): Promise<RunResult> {
    if (this.#used) throw new Error('internal: an early writer takes one input');
    this.#used = true;
    this.#input.give(input);
    return this.#result;
  }

  /** Not needed after all (another backend, nothing to write, a failure): it exits with nothing written. */
  release(): void {
    if (this.#used) return;
    this.#used = true;
    this.#input.give('');
  }
}
