/**
 * The capture command starts its first read (`nft list tables`, or `nft list ruleset` for native
 * nftables) in the background before it validates the rest of its configuration, checks the
 * namespace and logs (src/reconcile/engine.ts, startFirstRead). These tests hold it to what that
 * must not change: the same outcome, the read run once, nothing read by a dry run, and nothing
 * written (nor a rejection left unhandled) when the configuration turns out invalid.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { RunOptions, RunResult, System } from '../../src/backend/system.js';
import { captureCommand } from '../../src/cli/capture.js';
import type { CommandContext } from '../../src/cli/context.js';
import { ExitCode } from '../../src/errors.js';
import { ISTIO_INIT_ARGS } from '../helpers/capture.js';
import { FakeNetfilter } from '../helpers/fake-netfilter.js';

const ARGS = [...ISTIO_INIT_ARGS, '--ipv6=false'];

interface Seen {
  readonly command: string;
  readonly background: boolean;
}

/** The fake, with every run recorded as `name args` and whether it was asked to run in the background. */
function recording(fake: System, answer?: (file: string, args: readonly string[]) => RunResult | undefined) {
  const seen: Seen[] = [];
  const sys: System = {
    which: (name) => fake.which(name),
    readFile: (path) => fake.readFile(path),
    readBytes: (path) => fake.readBytes(path),
    readLink: (path) => fake.readLink(path),
    run: (file: string, args: readonly string[], options: RunOptions = {}) => {
      seen.push({ command: [file.split('/').pop(), ...args].join(' '), background: options.background === true });
      return Promise.resolve(answer?.(file, args) ?? fake.run(file, args, options));
    },
  };
  return { sys, seen };
}

function context(): CommandContext & { readonly out: string[]; readonly err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { env: {}, stdout: (text) => void out.push(text), stderr: (text) => void err.push(text), readStdin: async () => Buffer.alloc(0), out, err };
}

/** Runs the command and lets the event loop turn once, so that an unhandled rejection would have been reported. */
async function runWatchingRejections(run: () => Promise<number>): Promise<{ code: number; unhandled: unknown[] }> {
  const unhandled: unknown[] = [];
  const onRejection = (reason: unknown) => void unhandled.push(reason);
  process.on('unhandledRejection', onRejection);
  try {
    const code = await run();
    await new Promise((resolve) => setImmediate(resolve));
    return { code, unhandled };
  } finally {
    process.off('unhandledRejection', onRejection);
  }
}

describe('capture: the first read runs in the background, beside validation', () => {
  test('a first apply and its re-run: nft list tables comes first, in the background, once per run; the outcome is unchanged', async () => {
    const fake = new FakeNetfilter();
    const { sys, seen } = recording(fake);
    const first = context();
    assert.equal(await captureCommand('istio-iptables', () => sys)(ARGS, first), ExitCode.Ok, first.err.join(''));
    assert.deepEqual(seen[0], { command: 'nft list tables', background: true });
    assert.equal(seen.filter((s) => s.command === 'nft list tables').length, 1);
    assert.ok(seen.some((s) => s.command.startsWith('iptables-nft-restore')), 'the first apply restores');
    assert.match(first.err.join(''), /capture in place \(iptables-nft\)/);

    seen.length = 0;
    const again = context();
    assert.equal(await captureCommand('istio-iptables', () => sys)(ARGS, again), ExitCode.Ok, again.err.join(''));
    assert.deepEqual(seen.map((s) => s.command), ['nft list tables', 'iptables-nft-save'], 'a re-run reads twice and writes nothing');
    assert.match(again.err.join(''), /already in place, nothing to do/);
  });

  test('native nftables: the first read is the ruleset listing, started in the background and run once', async () => {
    const fake = new FakeNetfilter();
    const { sys, seen } = recording(fake);
    const ctx = context();
    assert.equal(await captureCommand('apply', () => sys)([...ARGS, '--native-nftables'], ctx), ExitCode.Ok, ctx.err.join(''));
    assert.deepEqual(seen[0], { command: 'nft list ruleset', background: true });
    assert.equal(seen.filter((s) => s.command === 'nft list ruleset').length, 1);
    assert.ok(seen.some((s) => s.command === 'nft -f -'), 'the transaction is applied');
  });

  test('a dry run and --skip-rule-apply start no read at all', async () => {
    for (const flag of ['--dry-run', '--skip-rule-apply']) {
      const { sys, seen } = recording(new FakeNetfilter());
      const ctx = context();
      assert.equal(await captureCommand('istio-iptables', () => sys)([...ARGS, flag], ctx), ExitCode.Ok, ctx.err.join(''));
      assert.deepEqual(seen, [], `${flag} ran ${seen.map((s) => s.command).join(', ')}`);
    }
  });

  test('an invalid value found after the read started: exit 2, only that read ran, nothing was written', async () => {
    const { sys, seen } = recording(new FakeNetfilter());
    const ctx = context();
    const { code, unhandled } = await runWatchingRejections(() => captureCommand('istio-iptables', () => sys)([...ARGS, '-z', '70000'], ctx));
    assert.equal(code, ExitCode.InvalidConfig);
    assert.match(ctx.err.join(''), /70000/);
    assert.deepEqual(seen.map((s) => s.command), ['nft list tables']);
    assert.deepEqual(unhandled, []);
  });

  test("in the machine's own network namespace the refusal still comes before anything runs", async () => {
    const { sys, seen } = recording(new FakeNetfilter({ links: { '/proc/self/ns/net': 'net:[4026531833]', '/proc/1/ns/net': 'net:[4026531833]' } }));
    const ctx = context();
    assert.equal(await captureCommand('istio-iptables', () => sys)(ARGS, ctx), ExitCode.InvalidConfig);
    assert.match(ctx.err.join(''), /refusing to capture in this machine's own network namespace/);
    assert.deepEqual(seen, []);
  });

  test('a failing first read that is never awaited (the config was invalid) leaves no unhandled rejection', async () => {
    const failingNft = (file: string): RunResult | undefined =>
      file.endsWith('/nft') ? { file, args: [], code: 1, signal: null, stdout: '', stderr: 'netlink: Error: cannot open socket', notFound: false } : undefined;
    const { sys, seen } = recording(new FakeNetfilter(), failingNft);
    const ctx = context();
    const { code, unhandled } = await runWatchingRejections(() => captureCommand('apply', () => sys)([...ARGS, '--native-nftables', '-p', 'x'], ctx));
    assert.equal(code, ExitCode.InvalidConfig);
    assert.deepEqual(seen.map((s) => s.command), ['nft list ruleset']);
    assert.deepEqual(unhandled, []);
  });
});
