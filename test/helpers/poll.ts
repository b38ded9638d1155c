/** Polling with a deadline: how tests wait for something to happen (never a fixed sleep). */

export interface PollOptions {
  /** Between two probes; short, since a probe is cheap and the wait is what a test measures. */
  readonly intervalMs?: number;
  /** What to add to the failure message (e.g. the last state seen). */
  readonly last?: () => string;
}

/** Resolves with the first value `probe` gives that is not undefined; throws after `timeoutMs`. */
export async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined> | T | undefined, options: PollOptions = {}): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${options.last ? `\n${options.last()}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 50));
  }
}
