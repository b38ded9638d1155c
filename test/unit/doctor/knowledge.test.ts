import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SECTION_HEADER } from '../../../src/doctor/classify.js';
import { CONFIG_BLOCK_PATTERNS } from '../../../src/doctor/config-block.js';
import { IP_RULE_PATTERNS } from '../../../src/doctor/ip-rules.js';
import { JOB_TABLE_PATTERNS } from '../../../src/doctor/job-table.js';
import { KNOWLEDGE, knowledgeFor } from '../../../src/doctor/knowledge.js';
import { ANSI } from '../../../src/doctor/lines.js';
import { MARKERS } from '../../../src/doctor/markers.js';
import { POD_STATE_PATTERNS } from '../../../src/doctor/pod-state.js';
import { SAVE_SECTION_PATTERNS } from '../../../src/doctor/save-sections.js';
import { CAUSE_IDS, type MarkerId } from '../../../src/doctor/types.js';

/**
 * Why a regex could backtrack without bound, or undefined if it cannot: only
 * bounded quantifiers ({n,m}, ?), no quantified groups, no backreferences.
 */
export function unboundedReason(re: RegExp): string | undefined {
  if (re.flags.includes('g') || re.flags.includes('y')) return 'stateful g/y flag';
  const src = re.source;
  let inClass = false;
  for (let i = 0; i < src.length; i += 1) {
    const ch = src[i];
    if (ch === '\\') {
      if (!inClass && /[1-9]/.test(src[i + 1] ?? '')) return `backreference at ${i}`;
      i += 1;
      continue;
    }
    if (inClass) {
      if (ch === ']') inClass = false;
      continue;
    }
    if (ch === '[') inClass = true;
    else if (ch === '*' || ch === '+') return `unbounded '${ch}' at ${i}`;
    else if (ch === '{' && /^\{\d+,\}/.test(src.slice(i))) return `open-ended '{n,}' at ${i}`;
    else if (ch === ')' && /^[*+{]/.test(src[i + 1] ?? '')) return `quantified group at ${i}`;
  }
  return undefined;
}

describe('doctor knowledge base', () => {
  it('has exactly one entry per cause id, in the documented set', () => {
    assert.deepEqual(
      KNOWLEDGE.map((e) => e.id).sort(),
      [...CAUSE_IDS].sort(),
    );
    for (const id of CAUSE_IDS) assert.equal(knowledgeFor(id).id, id);
  });

  it('gives every cause a title, an explanation, fix steps and upstream references', () => {
    for (const entry of KNOWLEDGE) {
      assert.ok(entry.title.length > 10 && !entry.title.includes('\n'), `${entry.id} title`);
      assert.ok(entry.explanation.length > 80, `${entry.id} explanation`);
      assert.ok(entry.fix.length >= 2, `${entry.id} fix steps`);
      if (entry.id === 'unknown') continue;
      assert.ok(entry.references.length >= 1, `${entry.id} references`);
      for (const ref of entry.references) assert.match(ref, /^https:\/\/github\.com\/[\w.-]{1,40}\/[\w.-]{1,40}\/(?:issues|pull)\/\d{1,6}$/);
      assert.ok(entry.signatures.length >= 1 || entry.id === 'backend-mismatch', `${entry.id} signatures`);
    }
  });

  it('uses signature names once and only known markers', () => {
    const names = new Set<string>();
    const markerIds = new Set(Object.keys(MARKERS));
    for (const entry of KNOWLEDGE) {
      for (const sig of entry.signatures) {
        assert.ok(!names.has(sig.name), `duplicate signature name ${sig.name}`);
        names.add(sig.name);
        assert.ok(sig.weight > 0 && sig.weight < 1, `${sig.name} weight`);
        for (const m of [...(sig.with ?? []), ...(sig.unless ?? [])]) assert.ok(markerIds.has(m as MarkerId), `${sig.name}: marker ${m}`);
      }
    }
  });

  it('names the real remedies', () => {
    const all = KNOWLEDGE.flatMap((e) => e.fix).join('\n');
    for (const remedy of [
      'meshcap apply',
      '--maximum-dead-containers',
      'docker system prune',
      'modprobe',
      'DaemonSet',
      '--backend=nft',
      'FORCE_IPTABLES_BINARY',
      'holdApplicationUntilProxyStarts',
      'sidecar.istio.io/nativeSidecar',
      'restartPolicy: Always',
      'quitquitquit',
      '--lock-timeout',
      'spc_t',
      'stdin',
    ]) {
      assert.ok(all.includes(remedy), `no fix mentions ${remedy}`);
    }
  });

  it('accepts only linear regexes (bounded quantifiers, no backreferences)', () => {
    const patterns: Array<[string, RegExp]> = [];
    for (const entry of KNOWLEDGE) {
      for (const sig of entry.signatures) {
        patterns.push([sig.name, sig.pattern]);
        if (sig.notOnLine !== undefined) patterns.push([`${sig.name}.notOnLine`, sig.notOnLine]);
      }
    }
    for (const [id, list] of Object.entries(MARKERS)) list.forEach((re, i) => patterns.push([`marker ${id}#${i}`, re]));
    [...SAVE_SECTION_PATTERNS, ...POD_STATE_PATTERNS, ...IP_RULE_PATTERNS, ...CONFIG_BLOCK_PATTERNS, ...JOB_TABLE_PATTERNS, SECTION_HEADER].forEach((re, i) =>
      patterns.push([`analyzer#${i}`, re]),
    );
    const ansi = new RegExp(ANSI.source); // the replace() copy is global on purpose; check its shape only
    patterns.push(['ansi', ansi]);
    for (const [name, re] of patterns) assert.equal(unboundedReason(re), undefined, `${name}: /${re.source}/`);
  });

  it('the linearity check itself rejects catastrophic shapes', () => {
    assert.equal(unboundedReason(/a{1,3}b/), undefined);
    assert.match(unboundedReason(/a.*b/) ?? '', /unbounded/);
    assert.match(unboundedReason(/(a|b)+c/) ?? '', /unbounded|quantified/);
    assert.match(unboundedReason(/x{2,}/) ?? '', /open-ended/);
    assert.match(unboundedReason(/(?:ab){1,9}/) ?? '', /quantified group/);
    assert.match(unboundedReason(/(a)\1/) ?? '', /backreference/);
    assert.match(unboundedReason(/a/g) ?? '', /flag/);
    assert.equal(unboundedReason(/[*+]{1,2}/), undefined);
  });
});
