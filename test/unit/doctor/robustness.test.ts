import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { diagnose } from '../../../src/doctor/classify.js';
import { decodeInput } from '../../../src/doctor/input.js';

/** Deterministic pseudo-random bytes (no Math.random: failures must reproduce). */
function bytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0;
  for (let i = 0; i < length; i += 1) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

const THIRTY_MB = 30 * 1024 * 1024;

describe('doctor robustness', () => {
  it('answers unknown for empty and blank input', () => {
    for (const input of ['', '\n', '\r\n\r\n', '   \t  \n\n']) {
      const d = diagnose(input);
      assert.equal(d.causes.length, 1);
      assert.equal(d.causes[0]?.id, 'unknown');
    }
  });

  it('survives binary input: NUL bytes, invalid UTF-8, lone surrogates', () => {
    const binary = decodeInput(bytes(256 * 1024, 7));
    assert.ok(binary.includes('\uFFFD'), 'invalid UTF-8 became U+FFFD');
    const d = diagnose(binary);
    assert.ok(d.causes.length >= 1);
    const mixed = `\u0000\u0000iptables-restore: line 2 failed: Chain already exists.\u0000\n\uD800-N ISTIO_INBOUND\u001b[31m\n`;
    const m = diagnose(mixed);
    assert.equal(m.causes[0]?.id, 'rerun-existing-chains');
    for (const e of m.causes[0]?.evidence ?? []) {
      assert.doesNotMatch(e.text, /[\u0000-\u0008\u001b]/, 'quotes carry no control characters');
    }
  });

  it('finishes on 30 MB of ordinary log lines and still finds the needle in the haystack', () => {
    const filler = '2026-05-14T10:01:02.331Z INFO  [http] GET /api/v1/products/81 200 12ms trace=4bf92f3577b34da6\n';
    const half = filler.repeat(Math.ceil(THIRTY_MB / 2 / filler.length));
    const input = `${half}2026-05-14T10:01:03.000Z error Another app is currently holding the xtables lock. Perhaps you want to use the -w option?\n${half}`;
    assert.ok(input.length >= THIRTY_MB);
    const d = diagnose(input);
    assert.equal(d.causes[0]?.id, 'xtables-lock');
    const quoted = d.causes[0]?.evidence[0];
    assert.ok(quoted !== undefined && quoted.line > 100_000, 'evidence points deep into the input');
  });

  it('finishes on a single 30 MB line and on 30 MB of NUL bytes', () => {
    assert.ok(diagnose('x'.repeat(THIRTY_MB)).causes.length >= 1);
    assert.ok(diagnose(decodeInput(new Uint8Array(THIRTY_MB))).causes.length >= 1);
  });

  it('finishes on 30 MB of hostile near-misses for the gap patterns', () => {
    // Many prefixes of bounded-gap signatures without their endings.
    const line = `${'dial tcp 10.0.0.1:80 connect to '.repeat(60)}Error connecting to 127.0.0.6:1500\n`;
    const d = diagnose(line.repeat(Math.ceil(THIRTY_MB / line.length)));
    assert.ok(d.causes.length >= 1);
  });

  it('caps evidence per cause however often a signature repeats', () => {
    const input = 'iptables: Chain already exists.\n-N ISTIO_INBOUND\n'.repeat(200_000);
    const d = diagnose(input, { maxEvidencePerCause: 5 });
    const first = d.causes[0];
    assert.equal(first?.id, 'rerun-existing-chains');
    assert.ok((first?.evidence.length ?? 0) <= 5);
    assert.equal(d.lines, 400_000);
  });

  it('cuts very long quoted lines', () => {
    const d = diagnose(`iptables: Chain already exists. ${'x'.repeat(10_000)}\n`, { maxQuoteLength: 80 });
    const text = d.causes[0]?.evidence[0]?.text ?? '';
    assert.ok(text.length <= 80, `quote has ${text.length} characters`);
    assert.ok(text.endsWith('…'));
  });

  it('is repeatable: the same input gives the same answer', () => {
    const input = 'RTNETLINK answers: File exists\nip rule add fwmark 1337 lookup 133\n';
    assert.deepEqual(diagnose(input), diagnose(input));
  });
});
