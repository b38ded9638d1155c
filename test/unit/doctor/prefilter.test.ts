import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LINE_PATTERNS, NEEDLES } from '../../../src/doctor/classify.js';
import { cleanLine, matchWindows } from '../../../src/doctor/lines.js';
import { literalRequirements, NeedleIndex } from '../../../src/doctor/prefilter.js';
import { loadCorpus } from './fixtures.js';

describe('doctor prefilter', () => {
  it('reads required literals off a regex source', () => {
    assert.deepEqual(literalRequirements(/Chain already exists/i), [['chain already exists']]);
    assert.deepEqual(literalRequirements(/line \d{1,7} failed/), [['line '], [' failed']]);
    assert.deepEqual(literalRequirements(/unknown option "--to-ports?"/), [['unknown option "--to-port']]);
    assert.deepEqual(literalRequirements(/Init:CrashLoopBackOff|Init:Error/), [['init:crashloopbackoff', 'init:error']]);
    assert.deepEqual(literalRequirements(/(?:dial tcp|connect to)[^\n]{0,9}(?:refused|reset)/), [
      ['dial tcp', 'connect to'],
      ['refused', 'reset'],
    ]);
    // An alternative without a usable literal means the pattern must always run.
    assert.equal(literalRequirements(/abc|\d{1,3}/), undefined);
    assert.equal(literalRequirements(/^[a-z]{1,9}-\d{8}/), undefined);
    // Optional pieces are not required.
    assert.deepEqual(literalRequirements(/foo(?:bar)?baz/), [['foo'], ['baz']]);
    assert.deepEqual(literalRequirements(/ab?cdef/), [['cdef']]);
  });

  it('finds every needle, overlapping or case-folded', () => {
    const index = new NeedleIndex([[['abc']], [['bcd']], [['zzz']], undefined, [['abcd'], ['xyz']]]);
    const scan = index.scanner();
    assert.deepEqual(scan('..ABCD..').sort(), [0, 1, 3]);
    assert.deepEqual(scan('abcd xyz').sort(), [0, 1, 3, 4]);
    assert.deepEqual(scan('nothing'), [3]);
    assert.deepEqual(scan('é abc é').sort(), [0, 3]);
  });

  it('never hides a pattern that matches a corpus line', () => {
    const scan = NEEDLES.scanner();
    let checked = 0;
    for (const fixture of loadCorpus()) {
      for (const raw of fixture.text.split('\n')) {
        const line = cleanLine(raw);
        if (line.length === 0) continue;
        const candidates = new Set(scan(line));
        const windows = matchWindows(line);
        LINE_PATTERNS.forEach((pattern, index) => {
          if (windows.some((w) => pattern.re.test(w))) {
            checked += 1;
            assert.ok(candidates.has(index), `/${pattern.re.source}/ matches but was filtered out: ${line}`);
          }
        });
      }
    }
    assert.ok(checked > 100, `only ${checked} pattern hits checked`);
  });

  it("never hides a pattern on lines built from the patterns' own literals", () => {
    // Lines that mix pieces of several signatures in odd case, to probe the automaton's suffix links.
    const scan = NEEDLES.scanner();
    const pieces = [
      'iptables-restore: line 2 failed: Chain already exists.',
      'Another app is currently holding the xtables lock',
      'RTNETLINK answers: File exists',
      "can't initialize iptables table `nat': Table does not exist (do you need to insmod?)",
      'dial tcp 10.0.0.1:80: connect: connection refused',
      'Error connecting to 127.0.0.6:15002',
      'avc:  denied  { module_request }',
      'Could not fetch rule set generation id: Invalid argument',
      "invalid port/service `x' specified",
    ];
    for (let i = 0; i < pieces.length; i += 1) {
      for (let j = 0; j < pieces.length; j += 1) {
        const line = `${pieces[i]}${j % 2 === 0 ? ' ' : ''}${(pieces[j] ?? '').toUpperCase()}`;
        const candidates = new Set(scan(line));
        LINE_PATTERNS.forEach((pattern, index) => {
          if (pattern.re.test(line)) assert.ok(candidates.has(index), `/${pattern.re.source}/ hidden on ${line}`);
        });
      }
    }
  });
});
