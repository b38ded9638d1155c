import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { diagnose } from '../../../src/doctor/classify.js';
import { cleanLine } from '../../../src/doctor/lines.js';
import { CAUSE_IDS } from '../../../src/doctor/types.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURE_ROOT, loadCorpus } from './fixtures.js';

const corpus = loadCorpus();

describe('doctor corpus', () => {
  it('has at least three inputs for every cause, and only known cause directories', () => {
    const counts = new Map<string, number>();
    for (const f of corpus) counts.set(f.cause, (counts.get(f.cause) ?? 0) + 1);
    for (const id of CAUSE_IDS) assert.ok((counts.get(id) ?? 0) >= 3, `${id} has ${counts.get(id) ?? 0} fixtures`);
    for (const dir of counts.keys()) assert.ok((CAUSE_IDS as readonly string[]).includes(dir), `unexpected fixture directory ${dir}`);
  });

  for (const fixture of corpus) {
    it(`${fixture.cause}/${fixture.name} ranks ${fixture.cause} first`, () => {
      const { causes } = diagnose(fixture.text);
      const first = causes[0];
      assert.ok(first !== undefined, 'at least one cause');
      assert.equal(
        first.id,
        fixture.cause,
        `got ${causes.map((c) => `${c.id}:${c.confidence}`).join(', ')}`,
      );
      if (fixture.cause !== 'unknown') {
        assert.ok(first.confidence >= 0.35, `confidence ${first.confidence} too low to claim`);
        assert.ok(first.evidence.length > 0, 'a claimed cause quotes evidence');
      }
    });

    it(`${fixture.cause}/${fixture.name} quotes real lines with their numbers`, () => {
      const lines = fixture.text.split('\n').map((l) => cleanLine(l.replace(/\r$/, '')));
      for (const cause of diagnose(fixture.text).causes) {
        for (const e of cause.evidence) {
          const actual = lines[e.line - 1];
          assert.ok(actual !== undefined, `L${e.line} is past the end of the input`);
          const shown = e.text.endsWith('…') ? e.text.slice(0, -1) : e.text;
          assert.ok(shown.length > 0, `L${e.line} quote is empty`);
          // Whole-line quotes are prefixes; quotes from inside escaped dumps are substrings.
          assert.ok(actual.includes(shown), `L${e.line} quote ${JSON.stringify(e.text)} is not on that line: ${JSON.stringify(actual)}`);
        }
      }
    });
  }

  it('reports its accuracy per class (the real-world corpus is scored separately, in real-corpus.test.ts)', () => {
    const perClass = new Map<string, { ok: number; total: number }>();
    for (const f of corpus) {
      const row = perClass.get(f.cause) ?? { ok: 0, total: 0 };
      row.total += 1;
      if (diagnose(f.text).causes[0]?.id === f.cause) row.ok += 1;
      perClass.set(f.cause, row);
    }
    const ok = [...perClass.values()].reduce((n, r) => n + r.ok, 0);
    const lines = [`hand-written corpus: ${ok}/${corpus.length}`];
    for (const [cause, row] of [...perClass].sort()) lines.push(`  ${cause}: ${row.ok}/${row.total}`);
    console.log(lines.join('\n'));
    assert.equal(ok, corpus.length);
  });

  it('records the origin of every input in SOURCES.md', () => {
    const sources = readFileSync(join(FIXTURE_ROOT, 'SOURCES.md'), 'utf8');
    for (const f of corpus) {
      const named = f.name.startsWith('cap-') ? `${f.cause}/${f.name}` : f.name.replace(/\.txt$/, '');
      assert.ok(sources.includes(named), `SOURCES.md does not mention ${named}`);
    }
  });

  it('ranks the unknown set as unknown with generic advice', () => {
    const unknowns = corpus.filter((f) => f.cause === 'unknown');
    assert.ok(unknowns.some((f) => f.text === ''), 'the unknown set includes an empty input');
    for (const f of unknowns) {
      const first = diagnose(f.text).causes[0];
      assert.equal(first?.id, 'unknown', f.name);
      assert.ok((first?.fix.length ?? 0) >= 3, 'unknown tells what to collect');
      assert.equal(first?.evidence.length, 0);
    }
  });
});
