/**
 * The audit loop's repair path against the netfilter fake (one fake per pod,
 * entered in place of nsenter): no root, no namespaces. Real-kernel and
 * containerd versions of these are in test/integration/audit.test.ts and
 * test/runtime/audit*.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { desiredCapture } from '../../src/audit/desired.js';
import { DEFAULT_POLICY } from '../../src/audit/policy.js';
import { auditNode } from '../../src/audit/run.js';
import type { Sandbox } from '../../src/audit/types.js';
import { runCapture } from '../../src/reconcile/engine.js';
import { engineOptions, memoryLogger } from '../helpers/capture.js';
import { FakeNetfilter } from '../helpers/fake-netfilter.js';
import { parseCaptureConfig } from '../../src/config/parse.js';

const STATUS = JSON.stringify({ initContainers: ['istio-init'], containers: ['istio-proxy'] });
const FACTS = { interfaceAddresses: () => ['198.18.0.2'], resolvConf: () => undefined, lookupUid: () => undefined };

function pod(name: string, annotations: Record<string, string> = { 'sidecar.istio.io/status': STATUS }): Sandbox {
  return { id: `sb-${name}`, namespace: 'shop', name, uid: `u-${name}`, ready: true, annotations, netnsPath: `/fake/${name}`, addresses: ['198.18.0.2'] };
}

/** The capture its annotations ask for, written into a fake by the engine (as istio-init would). */
async function captured(sandbox: Sandbox, fake = new FakeNetfilter()): Promise<FakeNetfilter> {
  const desired = desiredCapture(sandbox);
  assert.ok(desired.kind === 'capture');
  await runCapture(parseCaptureConfig(desired.args, {}, FACTS), engineOptions(fake));
  return fake;
}

function node(fakes: Map<string, FakeNetfilter>, sandboxes: Sandbox[]) {
  const history = new Map<string, number[]>();
  let clock = 1_000_000;
  const deps = {
    sys: new FakeNetfilter(),
    log: memoryLogger(),
    sandboxes: async () => sandboxes,
    now: () => clock,
    enter: async (_sys: unknown, path: string) => fakes.get(path) ?? assert.fail(`entered ${path}`),
  };
  return {
    audit: (repair: boolean) => auditNode(deps, { repair, history }),
    tick: (ms: number) => (clock += ms),
  };
}

describe('audit repair on the netfilter fake', () => {
  test('missing is repaired in place and audits ok; an uninjected pod is never entered', async () => {
    const web = pod('web');
    const plain = pod('plain', {});
    const fakes = new Map([[web.netnsPath!, new FakeNetfilter()]]);
    const n = node(fakes, [web, plain]);
    const found = await n.audit(false);
    assert.deepEqual(found.pods.map((p) => [p.pod, p.state]), [['web', 'missing']]);
    const repaired = await n.audit(true);
    assert.equal(repaired.pods[0]?.state, 'ok', repaired.pods[0]?.details.join('\n'));
    assert.equal(repaired.pods[0]?.repair?.result, 'ok');
    assert.match(fakes.get(web.netnsPath!)!.save('nft', 'ipv4'), /^-A OUTPUT -j ISTIO_OUTPUT$/m);
  });

  test('a capture in iptables-legacy is repaired there, not moved', async () => {
    const web = pod('web');
    const fake = new FakeNetfilter();
    const desired = desiredCapture(web);
    assert.ok(desired.kind === 'capture');
    await runCapture(parseCaptureConfig([...desired.args, '--backend=legacy'], {}, FACTS), engineOptions(fake));
    fake.load('legacy', 'ipv4', fake.save('legacy', 'ipv4').replace(/^-A ISTIO_OUTPUT -j ISTIO_REDIRECT\n/m, ''));
    const n = node(new Map([[web.netnsPath!, fake]]), [web]);
    const result = await n.audit(true);
    assert.equal(result.pods[0]?.repair?.before, 'drifted');
    assert.equal(result.pods[0]?.state, 'ok');
    assert.match(fake.save('legacy', 'ipv4'), /^-A ISTIO_OUTPUT -j ISTIO_REDIRECT$/m);
    assert.doesNotMatch(fake.save('nft', 'ipv4'), /ISTIO_/);
  });

  test('a writer that undoes every repair: two failed repairs, then foreign-conflict and no third restore', async () => {
    const web = pod('web');
    const fake = await captured(web);
    const flush = (f: FakeNetfilter) => f.load('nft', 'ipv4', '*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n');
    flush(fake);
    fake.afterEveryRestore(flush);
    const n = node(new Map([[web.netnsPath!, fake]]), [web]);
    const states: string[] = [];
    for (let i = 0; i < 3; i++) {
      const p = (await n.audit(true)).pods[0]!;
      states.push(`${p.repair ? `${p.repair.before}->${p.repair.result}:` : ''}${p.state}`);
      n.tick(30_000);
    }
    assert.deepEqual(states, ['missing->failed:missing', 'missing->failed:missing', 'foreign-conflict']);
    const restoresBefore = fake.calls.filter((c) => /-restore$/.test(c.file)).length;
    await n.audit(true);
    assert.equal(fake.calls.filter((c) => /-restore$/.test(c.file)).length, restoresBefore, 'no restore once the fight is seen');
    // The window passes without a repair: the audit tries again.
    n.tick(DEFAULT_POLICY.windowSeconds * 1000);
    fake.afterEveryRestore(undefined);
    const later = (await n.audit(true)).pods[0]!;
    assert.deepEqual([later.repair?.before, later.state], ['missing', 'ok']);
  });

  test('nf_tables without a nat table: the engine falls back to legacy and the pod audits ok', async () => {
    const web = pod('web');
    const fake = new FakeNetfilter().withoutTable('nft', 'nat');
    const n = node(new Map([[web.netnsPath!, fake]]), [web]);
    const result = (await n.audit(true)).pods[0]!;
    assert.equal(result.state, 'ok', result.details.join('\n'));
    assert.match(result.repair?.message ?? '', /iptables-legacy/);
  });
});
