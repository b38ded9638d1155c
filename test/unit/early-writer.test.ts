/**
 * A long capture starts its writer (iptables-nft-restore, or nft -f -) before the config is
 * validated, and hands it the input once planned (src/reconcile/early-writer.ts). Held to: the
 * same rules as without it, the writer run once, and nothing written through it when the plan
 * needs another binary, has nothing to write, or the config is invalid.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DeferredInput, inputText, knownInput, type RunOptions, type System } from '../../src/backend/system.js';
import { captureCommand } from '../../src/cli/capture.js';
import type { CommandContext } from '../../src/cli/context.js';
import { ExitCode } from '../../src/errors.js';
import { EarlyWriter } from '../../src/reconcile/early-writer.js';
import { silentLogger } from '../../src/log.js';
import { runCapture } from '../../src/reconcile/engine.js';
import { ISTIO_INIT_ARGS, configOf } from '../helpers/capture.js';
import { FakeNetfilter } from '../helpers/fake-netfilter.js';

/** 2000 excluded CIDRs: values long enough (~28 KB) for a capture to count as long. */
const LONG = Array.from({ length: 2000 }, (_, i) => `198.${18 + (i >> 8)}.${i & 255}.0/24`).join(',');
const longArgs = (...extra: string[]) => [...ISTIO_INIT_ARGS.map((arg, i) => (ISTIO_INIT_ARGS[i - 1] === '-x' ? LONG : arg)), '--ipv6=false', ...extra];

interface Seen {
  readonly command: string;
  /** When the run was asked for, relative to the others. */
  readonly order: number;
  /** What it was given, once known. */
  input?: string;
}

function recording(fake: FakeNetfilter) {
  const seen: Seen[] = [];
  const sys: System = {
    which: (name) => fake.which(name),
    readFile: (path) => fake.readFile(path),
    readBytes: () => fake.readBytes(),
    readLink: (path) => fake.readLink(path),
    run: async (file: string, args: readonly string[], options: RunOptions = {}) => {
      const entry: Seen = { command: [file.split('/').pop(), ...args].join(' '), order: seen.length };
      seen.push(entry);
      entry.input = inputText(await knownInput(options.input));
      return fake.run(file, args, { ...options, input: entry.input });
    },
  };
  return { sys, seen };
}

function context(): CommandContext & { readonly err: string[] } {
  const err: string[] = [];
  return { env: {}, stdout: () => undefined, stderr: (text) => void err.push(text), readStdin: async () => Buffer.alloc(0), err };
}

const restores = (seen: readonly Seen[], tool: string) => seen.filter((s) => s.command.startsWith(tool));

describe('capture: the writer of a long capture starts ahead', () => {
  test('iptables-nft: the restore is asked for before anything is read, fed the plan, and run once; the rules are those of a run without it', async () => {
    const fake = new FakeNetfilter();
    const { sys, seen } = recording(fake);
    const ctx = context();
    assert.equal(await captureCommand('istio-iptables', () => sys)(longArgs(), ctx), ExitCode.Ok, ctx.err.join(''));
    const written = restores(seen, 'iptables-nft-restore');
    assert.equal(written.length, 1);
    assert.deepEqual([seen[0]!.command, written[0]!.order], ['nft list tables', 1], 'asked for right after the first read, before detection reads anything');
    assert.equal(written[0]!.input!.split('\n').filter((line) => line.startsWith('-A ISTIO_OUTPUT -d 198.')).length, 2000);

    // The engine alone, without an early writer, leaves the same rules.
    const plain = new FakeNetfilter();
    await runCapture(configOf(longArgs()), { sys: plain, log: silentLogger });
    assert.match(plain.save('nft', 'ipv4'), /-A ISTIO_OUTPUT -d 198\.18\.0\.0\/24 -j RETURN/);
    assert.equal(fake.save('nft', 'ipv4'), plain.save('nft', 'ipv4'));
  });

  test('native nftables: nft -f - is started ahead and given the transaction', async () => {
    const fake = new FakeNetfilter();
    const { sys, seen } = recording(fake);
    const ctx = context();
    assert.equal(await captureCommand('istio-iptables', () => sys)(longArgs('--native-nftables'), ctx), ExitCode.Ok, ctx.err.join(''));
    const applied = seen.filter((s) => s.command === 'nft -f -');
    assert.equal(applied.length, 1);
    assert.equal(applied[0]!.order, 1, 'asked for right after the first read');
    assert.match(applied[0]!.input!, /^add table inet istio-proxy-nat$/m);
    assert.match(fake.nftListing(), /ip daddr 198\.18\.7\.0\/24 counter packets 0 bytes 0 return/);
  });

  test('the plan needs another binary (--backend=legacy): the early writer is given nothing, the legacy restore writes', async () => {
    const fake = new FakeNetfilter();
    const { sys, seen } = recording(fake);
    const ctx = context();
    assert.equal(await captureCommand('istio-iptables', () => sys)(longArgs('--backend=legacy'), ctx), ExitCode.Ok, ctx.err.join(''));
    assert.deepEqual(restores(seen, 'iptables-nft-restore').map((s) => s.input), ['']);
    assert.equal(restores(seen, 'iptables-legacy-restore').length, 1);
    assert.match(fake.save('legacy', 'ipv4'), /-A ISTIO_OUTPUT -d 198\.18\.0\.0\/24 -j RETURN/);
    assert.doesNotMatch(fake.save('nft', 'ipv4'), /ISTIO/);
  });

  test('a re-run with nothing to write, and an invalid value found after the writer started, write nothing through it', async () => {
    const fake = new FakeNetfilter();
    const { sys, seen } = recording(fake);
    assert.equal(await captureCommand('istio-iptables', () => sys)(longArgs(), context()), ExitCode.Ok);
    const before = fake.save('nft', 'ipv4');
    seen.length = 0;
    const again = context();
    assert.equal(await captureCommand('istio-iptables', () => sys)(longArgs(), again), ExitCode.Ok);
    assert.match(again.err.join(''), /already in place, nothing to do/);
    assert.deepEqual(restores(seen, 'iptables-nft-restore').map((s) => s.input), ['']);

    seen.length = 0;
    const invalid = context();
    const badPort = longArgs().map((arg, i, all) => (all[i - 1] === '-p' ? '99999' : arg));
    assert.equal(await captureCommand('istio-iptables', () => sys)(badPort, invalid), ExitCode.InvalidConfig);
    assert.match(invalid.err.join(''), /99999/);
    assert.deepEqual(restores(seen, 'iptables-nft-restore').map((s) => s.input), ['']);
    assert.equal(fake.save('nft', 'ipv4'), before);
  });

  test('EarlyWriter: takes only its own binary and arguments, once; release gives an empty input', async () => {
    const given: string[] = [];
    const sys = {
      run: async (_file: string, _args: readonly string[], options: RunOptions = {}) => {
        assert.ok(options.input instanceof DeferredInput, 'started before its input is known');
        assert.equal(options.background, true);
        given.push(inputText(await knownInput(options.input)) ?? '');
        return { file: _file, args: _args, code: 0, signal: null, stdout: '', stderr: '', notFound: false };
      },
    } as unknown as System;
    const used = new EarlyWriter(sys, '/usr/sbin/nft', ['-f', '-'], {});
    assert.equal(used.takes('/usr/sbin/nft', ['-f', '-']), true);
    assert.equal(used.takes('/usr/sbin/nft', ['-f', '/dev/stdin']), false);
    assert.equal(used.takes('/sbin/nft', ['-f', '-']), false);
    assert.equal((await used.write('flush ruleset\n')).code, 0);
    assert.equal(used.takes('/usr/sbin/nft', ['-f', '-']), false, 'one input only');
    used.release();
    const unused = new EarlyWriter(sys, '/usr/sbin/iptables-nft-restore', ['--noflush'], {});
    unused.release();
    unused.release();
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(given, ['flush ruleset\n', '']);
  });
});
