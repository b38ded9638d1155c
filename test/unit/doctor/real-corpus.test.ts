import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { diagnose } from '../../../src/doctor/classify.js';
import { cleanLine } from '../../../src/doctor/lines.js';
import { CAUSE_IDS, type CauseId } from '../../../src/doctor/types.js';
import { loadCorpus, REAL_ROOT, type Fixture } from './fixtures.js';

/**
 * Logs real users posted in public threads (test/fixtures/doctor/real/, cited in
 * its SOURCES.md), scored on their own: a separate figure from the hand-written
 * corpus, whose inputs the same team wrote as the signatures.
 */

const corpus = loadCorpus(REAL_ROOT);

/** Answers that are right for a real non-capture log: the capture is not blamed. */
const NOT_CAPTURE: ReadonlySet<CauseId> = new Set<CauseId>(['unknown', 'control-plane-unready']);

/**
 * Cases the doctor does not get right yet, with the reason. Everything else in
 * the corpus is asserted to rank its label first.
 */
const KNOWN_MISSES: ReadonlyMap<string, string> = new Map<string, string>([
  [
    'selinux-denied/istio-24101-restore-panic-stack.txt',
    'only a Go stack trace of the failed restore was pasted; the SELinux denial the thread found is in the node audit log, not in the input',
  ],
  [
    'init-container-blocked/istio-49787-gitlab-init-cni-refused.txt',
    'one application error line with no container name, mesh or CNI in it; that it came from an init container under istio-cni is only in the thread\'s prose',
  ],
  [
    'proxy-not-ready/cf-for-k8s-189-app-db-before-envoy.txt',
    'an application panic on a refused database connection with no sign of a mesh in the paste; refused connections alone are far too common to blame the sidecar',
  ],
]);

/** The floor the corpus must stay above: what is reached today, so a regression fails. */
const ACCURACY_FLOOR = 0.95;


function verdict(f: Fixture): { ok: boolean; got: string } {
  const causes = diagnose(f.text).causes;
  const first = causes[0];
  const got = causes.map((c) => `${c.id}:${c.confidence}`).join(', ');
  if (first === undefined) return { ok: false, got };
  const ok = f.cause === 'unknown' ? NOT_CAPTURE.has(first.id) : first.id === f.cause;
  return { ok, got };
}

describe('doctor on real users\' logs (separate score)', () => {
  it('holds at least 40 logs, 5 of them real non-capture problems, each cited in SOURCES.md', () => {
    assert.ok(corpus.length >= 40, `only ${corpus.length} real logs`);
    const nonCapture = corpus.filter((f) => f.cause === 'unknown' || f.cause === 'control-plane-unready');
    assert.ok(nonCapture.length >= 5, `only ${nonCapture.length} non-capture logs`);
    const sources = readFileSync(join(REAL_ROOT, 'SOURCES.md'), 'utf8');
    for (const f of corpus) {
      assert.ok((CAUSE_IDS as readonly string[]).includes(f.cause), `unknown label directory ${f.cause}`);
      assert.ok(sources.includes(`\`${f.name}\``), `SOURCES.md does not cite ${f.cause}/${f.name}`);
      const row = sources.split('\n').find((line) => line.startsWith(`| \`${f.name}\` |`));
      assert.ok(row !== undefined && /\| https:\/\/\S{8,300} \| \S/.test(row), `${f.name} has no thread URL and conclusion`);
    }
  });

  it('reports accuracy overall and per class, and stays above the floor', () => {
    const perClass = new Map<string, { ok: number; total: number }>();
    let ok = 0;
    const misses: string[] = [];
    for (const f of corpus) {
      const v = verdict(f);
      const row = perClass.get(f.cause) ?? { ok: 0, total: 0 };
      row.total += 1;
      if (v.ok) {
        row.ok += 1;
        ok += 1;
      } else misses.push(`${f.cause}/${f.name} -> ${v.got}`);
      perClass.set(f.cause, row);
    }
    const accuracy = ok / corpus.length;
    const lines = [`real corpus: ${ok}/${corpus.length} = ${(accuracy * 100).toFixed(1)}%`];
    for (const [cause, row] of [...perClass].sort()) lines.push(`  ${cause}: ${row.ok}/${row.total}`);
    for (const miss of misses) lines.push(`  miss: ${miss}`);
    console.log(lines.join('\n'));
    assert.ok(accuracy >= ACCURACY_FLOOR, `accuracy ${accuracy.toFixed(3)} below ${ACCURACY_FLOOR}`);
  });

  for (const f of corpus) {
    const key = `${f.cause}/${f.name}`;
    const known = KNOWN_MISSES.get(key);
    it(`${key} ${known === undefined ? 'ranks its thread\'s conclusion first' : `(known miss: ${known})`}`, () => {
      const v = verdict(f);
      if (known !== undefined) {
        // A known miss that starts passing must be promoted, not left in the list.
        assert.equal(v.ok, false, `${key} now passes; remove it from KNOWN_MISSES`);
        return;
      }
      assert.ok(v.ok, `got ${v.got}`);
      const first = diagnose(f.text).causes[0];
      if (first !== undefined && first.id !== 'unknown') {
        assert.ok(first.evidence.length > 0, 'a claimed cause quotes evidence');
        const lines = f.text.split('\n').map((l) => cleanLine(l.replace(/\r$/, '')));
        for (const e of first.evidence) {
          const shown = e.text.endsWith('…') ? e.text.slice(0, -1) : e.text;
          assert.ok(lines[e.line - 1]?.includes(shown), `L${e.line} is not quoted from the input`);
        }
      }
    });
  }
});
