/** The real System seam: both ways of running a child, and both ways of collecting stdout, answer alike. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DeferredInput, realSystem } from '../../src/backend/system.js';
import { StreamedText } from '../../src/render/streamed-text.js';

const variants = [
  { name: 'async, pipe', blocking: false, largeOutput: false, background: false },
  { name: 'async, scratch file', blocking: false, largeOutput: true, background: false },
  { name: 'spawnSync, pipe', blocking: true, largeOutput: false, background: false },
  { name: 'spawnSync, scratch file', blocking: true, largeOutput: true, background: false },
  { name: 'blocking, in the background (stdio all scratch files)', blocking: true, largeOutput: false, background: true },
];

describe('realSystem.run', () => {
  for (const v of variants) {
    it(`${v.name}: stdout, stderr, exit code and stdin`, async () => {
      const sys = realSystem(process.env, { blocking: v.blocking });
      // Many small unbuffered writes, as nft does, and a line read from stdin.
      const script = 'read line; i=0; while [ $i -lt 2000 ]; do printf "r$i "; i=$((i+1)); done; echo "$line"; echo oops >&2; exit 3';
      const result = await sys.run('/bin/sh', ['-c', script], { input: 'hello\n', largeOutput: v.largeOutput, background: v.background });
      assert.equal(result.code, 3);
      assert.equal(result.stderr, 'oops\n');
      assert.ok(result.stdout.startsWith('r0 r1 '));
      assert.ok(result.stdout.endsWith('r1999 hello\n'));
      assert.equal(result.stdout.split(' ').length, 2001);
      assert.equal(result.notFound, false);
    });

    it(`${v.name}: a streamed input reaches the child whole, in order`, async () => {
      const sys = realSystem(process.env, { blocking: v.blocking });
      // 40 chunks of 8 KiB: more than a pipe holds, so the feed waits for the child at least once.
      const chunks = function* (n: number) {
        for (let i = 0; i < n; i++) yield `${String(i).padStart(8, '0')}${'y'.repeat(8183)}\n`;
      };
      const input = StreamedText.rendered(chunks, [40], { empty: false, estimatedLength: 40 * 8192 });
      const result = await sys.run('/bin/sh', ['-c', 'cksum'], { input, largeOutput: v.largeOutput, background: v.background });
      const expected = await realSystem(process.env, { blocking: true }).run('/bin/sh', ['-c', 'cksum'], { input: [...chunks(40)].join('') });
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, expected.stdout);
      assert.equal(input.text().length, 40 * 8192);
    });

    it(`${v.name}: a child that exits without reading a streamed input is reported, not a crash`, async () => {
      const sys = realSystem(process.env, { blocking: v.blocking });
      const input = StreamedText.rendered(function* () {
        for (let i = 0; i < 512; i++) yield `${'z'.repeat(8191)}\n`;
      }, [], { empty: false, estimatedLength: 512 * 8192 });
      const result = await sys.run('/bin/sh', ['-c', 'echo gone >&2; exit 4'], { input, largeOutput: v.largeOutput, background: v.background });
      assert.equal(result.code, 4);
      assert.equal(result.stderr, 'gone\n');
    });

    it(`${v.name}: an input given after the child was asked for reaches it; one given empty is an empty stdin`, async () => {
      const sys = realSystem(process.env, { blocking: v.blocking });
      const later = new DeferredInput();
      const running = sys.run('/bin/sh', ['-c', 'cat; echo end'], { input: later, largeOutput: v.largeOutput, background: v.background });
      // A turn of the event loop with the child (where it was started) waiting on its stdin.
      await new Promise((resolve) => setImmediate(resolve));
      later.give(StreamedText.of('given later\n'));
      assert.equal((await running).stdout, 'given later\nend\n');
      const empty = new DeferredInput();
      const idle = sys.run('/bin/sh', ['-c', 'wc -c'], { input: empty, largeOutput: v.largeOutput, background: v.background });
      empty.give('');
      assert.equal((await idle).stdout.trim(), '0');
    });

    it(`${v.name}: a missing binary is exit 127 and notFound`, async () => {
      const sys = realSystem(process.env, { blocking: v.blocking });
      const result = await sys.run('/nonexistent/meshcap-test-binary', [], { largeOutput: v.largeOutput, background: v.background });
      assert.equal(result.code, 127);
      assert.equal(result.notFound, true);
      assert.match(result.stderr, /ENOENT/);
    });
  }

  it('a background child gets an input larger than a pipe holds whole (a 1 MiB scratch file read from its start)', async () => {
    const sys = realSystem(process.env, { blocking: true });
    const input = `${'x'.repeat(1023)}\n`.repeat(1024);
    const result = await sys.run('/bin/sh', ['-c', 'wc -c'], { input, background: true });
    assert.equal(result.code, 0);
    assert.equal(result.stdout.trim(), String(input.length));
  });

  it('the environment reaches the child with LC_ALL=C', async () => {
    const sys = realSystem({ PATH: process.env.PATH, MESHCAP_TEST_VAR: 'x1' }, { blocking: true });
    const result = await sys.run('/bin/sh', ['-c', 'echo "$MESHCAP_TEST_VAR $LC_ALL"']);
    assert.equal(result.stdout, 'x1 C\n');
  });
});
