/** The CRI inventory and the agent's audit loop against a stand-in CRI (a fake SandboxSource, named as one). */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { criSandboxes, type ListedSandbox, type SandboxSource } from '../../src/audit/inventory.js';
import { AuditLoop } from '../../src/audit/loop.js';
import type { AuditResult } from '../../src/audit/run.js';
import type { System } from '../../src/backend/system.js';

/** Nothing on PATH, nothing to read: these tests never reach a pod's namespace. */
const emptySystem: System = { run: async () => assert.fail('no process may run'), which: () => undefined, readFile: () => undefined, readBytes: () => undefined, readLink: () => undefined };

const STATUS = JSON.stringify({ initContainers: ['istio-init'], containers: ['istio-proxy'] });
const info = (path: string) => ({ info: JSON.stringify({ runtimeSpec: { linux: { namespaces: [{ type: 'pid' }, { type: 'network', path }] } } }) });

function fakeCri(items: ListedSandbox[], calls: string[] = []): SandboxSource & { close(): void } {
  return {
    async listPodSandbox() {
      calls.push('list');
      return items;
    },
    async podSandboxStatus(id) {
      calls.push(`status ${id}`);
      if (id === 'gone') throw new Error('NOT_FOUND');
      return { status: { network: { ip: '198.18.3.4', additional_ips: [{ ip: '2001:db8::4' }] } }, info: info(`/run/netns/cni-${id}`) };
    },
    close() {},
  };
}

const sandbox = (id: string, annotations: Record<string, string>, state = 'SANDBOX_READY'): ListedSandbox => ({ id, metadata: { name: `pod-${id}`, namespace: 'ns', uid: `u-${id}` }, state, annotations });

describe('CRI inventory (stand-in CRI)', () => {
  test('asks for the status of ready, injected sandboxes only; a sandbox removed meanwhile is dropped', async () => {
    const calls: string[] = [];
    const out = await criSandboxes(fakeCri([sandbox('a', { 'sidecar.istio.io/status': STATUS }), sandbox('b', {}), sandbox('c', { 'sidecar.istio.io/status': STATUS }, 'SANDBOX_NOTREADY'), sandbox('gone', { 'sidecar.istio.io/status': STATUS })], calls));
    assert.deepEqual(calls, ['list', 'status a', 'status gone']);
    assert.deepEqual(out.map((s) => [s.id, s.ready, s.netnsPath, s.addresses]), [
      ['a', true, '/run/netns/cni-a', ['198.18.3.4', '2001:db8::4']],
      ['b', true, undefined, []],
      ['c', false, undefined, []],
    ]);
  });
});

describe('audit loop (stand-in CRI)', () => {
  test('an unreachable runtime is a readiness problem and a failed run; it recovers on the next audit', async () => {
    let fail = true;
    const audits: AuditResult[] = [];
    let resolveSecond: () => void;
    const second = new Promise<void>((resolve) => (resolveSecond = resolve));
    const loop = new AuditLoop({
      intervalSeconds: 0.01,
      repair: 'in-place',
      sys: emptySystem,
      openCri: async () => {
        if (fail) {
          fail = false;
          throw new Error('CRI ListPodSandbox on /x.sock failed: the runtime does not answer');
        }
        return fakeCri([sandbox('b', {})]);
      },
      onAudit: (result) => {
        audits.push(result);
        resolveSecond();
      },
    });
    const logs: string[] = [];
    loop.start({ criSocket: '/x.sock', log: (level, line) => logs.push(`${level} ${line}`) });
    await second;
    await loop.stop();
    assert.ok(logs.some((l) => /^warn audit: CRI ListPodSandbox .* does not answer/.test(l)), logs.join('\n'));
    assert.deepEqual(audits[0]!.pods, [], 'the uninjected pod is not audited');
    assert.equal(loop.lastProblem(), undefined);
    const text = loop.metrics();
    assert.match(text, /^meshcap_audit_runs_total\{result="failed"\} 1$/m);
    assert.match(text, /^meshcap_audit_runs_total\{result="ok"\} [1-9]\d*$/m);
    assert.doesNotMatch(text, /^meshcap_pod_capture_state\{/m);
  });

  test('without a CRI socket the loop reports why and does not run', () => {
    const loop = new AuditLoop({ intervalSeconds: 30, repair: 'off', sys: emptySystem, openCri: async () => fakeCri([]) });
    loop.start({ log: () => {} });
    assert.match(loop.lastProblem()!, /no --cri-socket/);
  });
});

describe('per-namespace files', () => {
  test("tail's headers split back into the files, empty ones included", async () => {
    const { parseTailHeaders } = await import('../../src/audit/netns-system.js');
    const files = parseTailHeaders('==> /a <==\n\n==> /b <==\nnat\nfilter\n\n==> /c <==\nno newline\n==> /d <==\n0\n');
    assert.deepEqual([...files], [['/a', ''], ['/b', 'nat\nfilter\n'], ['/c', 'no newline'], ['/d', '0\n']]);
  });
});
