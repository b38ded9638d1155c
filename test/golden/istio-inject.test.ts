/**
 * Istio's injection anchors replayed through meshcap's engine: istio-init args
 * and proxy placement must equal Istio's, skipped documents must come out
 * unchanged, the bad-annotation case must fail; every other compared field must
 * match unless the case lists it as a deliberate difference. Prints the match
 * report.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { injectManifests } from '../../src/inject/manifest.js';
import { runCli } from '../helpers/cli.js';
import { anchorsOrSkip } from '../helpers/paths.js';
import { FIXTURE_CASES, INJECT_CASES, ISTIO_LIKE } from './inject-cases.js';
import { FIELDS, INJECT_DIR, matchReport, podsOf, runCase } from './inject-compare.js';

const anchors = anchorsOrSkip();
const skip = anchors.available ? false : anchors.reason;

describe('istio injection anchors', { skip }, () => {
  test('every golden file is used by a case (no stale anchors)', () => {
    const goldens = readdirSync(INJECT_DIR).filter((f) => f.endsWith('.injected')).sort();
    const used = new Set(INJECT_CASES.map((c) => c.golden).filter(Boolean));
    assert.deepEqual(goldens.filter((g) => !used.has(g)), []);
  });

  for (const c of [...INJECT_CASES, ...FIXTURE_CASES]) {
    const name = `#${c.n} ${c.golden ?? c.input}${c.settings ? ` with ${JSON.stringify(c.settings)}` : ''}`;
    test(name, () => {
      const { result, ours, mismatches } = runCase(c);
      if (c.error) {
        assert.equal(result.status, 'error-ok', result.detail);
        return;
      }
      if (c.skipped) {
        assert.equal(result.status, 'skipped-ok', 'skipped documents must pass through byte for byte');
        return;
      }
      assert.equal(result.status, 'compared', result.detail);
      for (const field of Object.keys(FIELDS)) {
        if (c.differs?.[field]) continue;
        assert.deepEqual(mismatches[field], undefined, `${field} differs from Istio: ${JSON.stringify(mismatches[field]?.[0])}`);
      }
      // Re-injecting the output changes nothing.
      const again = injectManifests(ours!, { ...ISTIO_LIKE, ...c.settings });
      assert.equal(again.text, ours);
    });
  }

  test('ISTIO_KUBE_APP_PROBERS is compared where Istio writes it, not only absent against absent', () => {
    const compared = INJECT_CASES.filter((c) => c.golden && !c.skipped);
    const withProbers = compared.filter((c) =>
      podsOf(readFileSync(join(INJECT_DIR, c.golden!), 'utf8')).some((pod) => FIELDS.ISTIO_KUBE_APP_PROBERS!(pod) !== null));
    assert.deepEqual(withProbers.map((c) => c.n), [14, 15, 16, 18, 19, 20]);
    for (const c of withProbers) assert.equal(c.differs?.ISTIO_KUBE_APP_PROBERS, undefined, `#${c.n} is held to the exact text`);
  });

  test('unsupported kinds pass through byte for byte (frontend.yaml Service)', () => {
    const input = readFileSync(join(INJECT_DIR, 'frontend.yaml'), 'utf8');
    const service = input.slice(0, input.indexOf('---'));
    const out = injectManifests(input, ISTIO_LIKE).text;
    assert.ok(out.startsWith(`${service}---`), 'the Service document is copied verbatim');
  });

  test('CronJob: sidecar and metadata land in spec.jobTemplate.spec.template', () => {
    const out = injectManifests(readFileSync(join(INJECT_DIR, 'cronjob.yaml'), 'utf8'), ISTIO_LIKE).text;
    assert.match(out, /jobTemplate:\n {4}spec:\n {6}template:/);
    const [pod] = podsOf(out.replace(/kind: CronJob/, 'kind: CronJob'));
    assert.ok(pod, 'one pod template');
    const annotations = pod.metadata.annotations as Record<string, string>;
    assert.ok(annotations['sidecar.istio.io/status'], 'status annotation on the pod template');
  });

  test('the CLI rejects the bad annotation: exit 2, one line naming annotation and value', () => {
    const result = runCli(['inject', '-f', join(INJECT_DIR, 'traffic-annotations-bad-includeipranges.yaml')]);
    assert.equal(result.code, 2);
    assert.equal(result.stdout, '');
    assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
    assert.match(result.stderr, /annotation traffic\.sidecar\.istio\.io\/includeOutboundIPRanges/);
    assert.match(result.stderr, /"bad"/);
  });

  test('the CLI with the meshcap image: command [meshcap], args identical to Istio, warnings on stderr', () => {
    const result = runCli(['inject', '-f', '-'], {
      input: readFileSync(join(INJECT_DIR, 'hello-multi.yaml'), 'utf8') + readFileSync(join(INJECT_DIR, 'hello-host-network.yaml'), 'utf8').replace(/^/, '---\n'),
    });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /warning: Skipping injection because Deployment "default\/hello-host-network" has host networking enabled/);
    const pods = podsOf(result.stdout);
    const golden = podsOf(readFileSync(join(INJECT_DIR, 'hello-multi.yaml.injected'), 'utf8'));
    assert.equal(pods.length, 3);
    for (const [i, want] of golden.entries()) {
      const init = (pods[i]!.spec.initContainers as { name: string; command?: string[]; args: string[] }[])[0]!;
      assert.equal(init.name, 'istio-init');
      assert.deepEqual(init.command, ['meshcap']);
      assert.deepEqual(init.args, (want.spec.initContainers as { args: string[] }[])[0]!.args);
    }
  });

  test('match report', () => {
    const report = matchReport();
    console.log(report);
    assert.match(report, /0 failed/);
  });
});
