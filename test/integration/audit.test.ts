/**
 * The node audit against the real kernel, driving the library directly with
 * sandboxes whose network namespaces are throwaway `ip netns` labs (the CRI
 * stand-in here is a list; test/runtime/audit* uses a real containerd).
 * States are produced by real rule changes, repairs by the real engine, and a
 * real connection proves a restored capture.
 */
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { desiredCapture } from '../../src/audit/desired.js';
import { DEFAULT_POLICY, type RepairHistory } from '../../src/audit/policy.js';
import { type AuditResult, auditNode } from '../../src/audit/run.js';
import type { Sandbox } from '../../src/audit/types.js';
import { realSystem } from '../../src/backend/system.js';
import type { Logger } from '../../src/log.js';
import { Lab, OUTSIDE_V4, POD_V4, POD_V6, labSkipReason } from '../helpers/netns.js';

const skip = labSkipReason();

const INIT_STATUS = JSON.stringify({ initContainers: ['istio-init'], containers: ['istio-proxy'], volumes: null, imagePullSecrets: null, revision: 'default' });
const CNI_STATUS = JSON.stringify({ initContainers: ['istio-validation'], containers: ['istio-proxy'], volumes: null, imagePullSecrets: null, revision: 'default' });

const logs: string[] = [];
const log: Logger = { debug: () => {}, info: (m) => logs.push(m), warn: (m) => logs.push(m), error: (m) => logs.push(m), fatal: (m) => logs.push(m) };

function sandboxFor(lab: Lab, name: string, annotations: Record<string, string>): Sandbox {
  return { id: `sb-${name}`, namespace: 'shop', name, uid: `uid-${name}`, ready: true, annotations, netnsPath: `/run/netns/${lab.pod}`, addresses: [POD_V4, POD_V6] };
}

/** The capture istio-init (or the CNI plugin) writes for a sandbox: the audit's own derivation, applied by meshcap in the pod. */
async function capture(lab: Lab, sandbox: Sandbox, extra: readonly string[] = []): Promise<void> {
  const desired = desiredCapture(sandbox);
  assert.equal(desired.kind, 'capture');
  const result = await lab.meshcap(['apply', ...(desired.kind === 'capture' ? desired.args : []), ...extra]);
  assert.equal(result.code, 0, result.stderr);
}

async function sh(lab: Lab, script: string): Promise<void> {
  const result = await lab.exec(lab.pod, ['sh', '-c', script]);
  assert.equal(result.code, 0, `${script}: ${result.stderr}`);
}

const stateOf = (result: AuditResult, pod: string) => result.pods.find((p) => p.pod === pod);

/**
 * Counts the TCP and UDP packets (any family) arriving at the lab's outside
 * namespace from now on (a counter in a table of that test-made namespace);
 * neighbour discovery and ARP are not counted.
 */
async function countArrivals(lab: Lab): Promise<() => Promise<number>> {
  const setup = 'nft add table inet audit_count && nft add chain inet audit_count in "{ type filter hook prerouting priority -300; }" && nft add rule inet audit_count in meta l4proto "{ tcp, udp }" counter';
  const made = await lab.exec(lab.outside, ['sh', '-c', setup]);
  assert.equal(made.code, 0, made.stderr);
  return async () => {
    const listed = await lab.exec(lab.outside, ['nft', 'list', 'table', 'inet', 'audit_count']);
    await lab.exec(lab.outside, ['nft', 'delete', 'table', 'inet', 'audit_count']);
    const packets = /counter packets (\d+)/.exec(listed.stdout);
    assert.ok(packets, listed.stdout + listed.stderr);
    return Number(packets[1]);
  };
}

describe('node audit in real namespaces', { skip }, () => {
  const labs: Lab[] = [];
  let sandboxes: Sandbox[] = [];
  let web: Sandbox;
  let api: Sandbox;
  let plain: Sandbox;
  let webLab: Lab;
  let apiLab: Lab;
  let plainLab: Lab;
  const history: RepairHistory = new Map();
  const audit = (repair: boolean) => auditNode({ sys: realSystem(), log, sandboxes: async () => sandboxes }, { repair, history });

  before(async () => {
    webLab = Lab.create('aud');
    apiLab = Lab.create('aud');
    plainLab = Lab.create('aud');
    labs.push(webLab, apiLab, plainLab);
    web = sandboxFor(webLab, 'web', { 'sidecar.istio.io/status': INIT_STATUS });
    api = sandboxFor(apiLab, 'api', { 'sidecar.istio.io/status': CNI_STATUS, 'traffic.sidecar.istio.io/includeInboundPorts': '8080' });
    plain = sandboxFor(plainLab, 'plain', { 'kubernetes.io/config.source': 'api' });
    sandboxes = [web, api, plain];
    await capture(webLab, web);
    await capture(apiLab, api);
    // The uninjected pod has rules of its own, which the audit must neither report nor touch.
    await sh(plainLab, 'iptables-nft -t nat -A OUTPUT -p tcp --dport 9999 -j RETURN');
    await webLab.serve(webLab.outside, [8080], 'outside-app');
    await webLab.serve(webLab.pod, [15001, 15006], 'proxy');
  });
  after(async () => {
    for (const lab of labs) await lab.destroy();
  });

  test('injected pods in both layouts are ok; the uninjected pod is not listed and not touched', async () => {
    const before = await plainLab.save('nft');
    const result = await audit(true);
    assert.deepEqual(
      result.pods.map((p) => [p.namespace, p.pod, p.layout, p.state]),
      [
        ['shop', 'api', 'cni', 'ok'],
        ['shop', 'web', 'init-container', 'ok'],
      ],
    );
    assert.equal(await plainLab.save('nft'), before);
  });

  test('a flushed nat table is missing; the repair restores it in place, proven by a real connection; no packet leaves the pod meanwhile', async () => {
    await sh(webLab, 'iptables-nft -t nat -F && iptables-nft -t nat -X');
    const bypass = await webLab.connect(webLab.pod, OUTSIDE_V4, 8080);
    assert.equal(bypass.reply, `outside-app ${OUTSIDE_V4} 8080`, 'with the capture gone, the app reaches the outside directly');
    const counted = await countArrivals(webLab);
    const found = await audit(false);
    assert.equal(stateOf(found, 'web')?.state, 'missing');
    assert.equal(stateOf(found, 'api')?.state, 'ok');

    const repaired = await audit(true);
    const pod = stateOf(repaired, 'web')!;
    assert.equal(pod.state, 'ok', pod.details.join('\n'));
    assert.deepEqual(pod.repair && { before: pod.repair.before, result: pod.repair.result }, { before: 'missing', result: 'ok' });
    assert.equal(await counted(), 0, 'the audit and the repair sent nothing out of the pod');
    const captured = await webLab.connect(webLab.pod, OUTSIDE_V4, 8080);
    assert.match(captured.reply ?? captured.error ?? '', /^proxy \S+ 15001$/, 'after the repair the app lands on the proxy again, without a restart');
  });

  test('a native nftables capture is audited too, and repaired where it lives', async () => {
    const lab = Lab.create('aud');
    labs.push(lab);
    const pod = sandboxFor(lab, 'nat46', { 'sidecar.istio.io/status': INIT_STATUS });
    await capture(lab, pod, ['--native-nftables']);
    sandboxes = [...sandboxes, pod];
    try {
      assert.equal(stateOf(await audit(false), 'nat46')?.state, 'ok');
      await sh(lab, 'nft flush chain inet istio-proxy-nat istio-output');
      const found = stateOf(await audit(false), 'nat46')!;
      assert.equal(found.state, 'partial', found.details.join('\n'));
      const repaired = stateOf(await audit(true), 'nat46')!;
      assert.equal(repaired.state, 'ok', repaired.details.join('\n'));
      assert.match(repaired.repair?.message ?? '', /nftables/);
      assert.equal((await lab.save('nft')).includes('ISTIO_'), false, 'the repair did not move the capture into iptables');
      assert.match(await lab.nftRuleset(), /table inet istio-proxy-nat/);
    } finally {
      sandboxes = sandboxes.filter((s) => s !== pod);
    }
  });

  test('TPROXY: the policy routing is part of the capture; without it the pod is partial, and the repair restores it', async () => {
    const lab = Lab.create('aud');
    labs.push(lab);
    const pod = sandboxFor(lab, 'tproxy', { 'sidecar.istio.io/status': INIT_STATUS, 'sidecar.istio.io/interceptionMode': 'TPROXY' });
    await capture(lab, pod);
    sandboxes = [...sandboxes, pod];
    try {
      assert.equal(stateOf(await audit(false), 'tproxy')?.state, 'ok');
      await sh(lab, 'ip -4 rule del fwmark 1337 lookup 133');
      const found = stateOf(await audit(false), 'tproxy')!;
      assert.equal(found.state, 'partial', found.details.join('\n'));
      assert.match(found.details.join('\n'), /no 'ip -4 rule fwmark 1337 lookup TABLE'/);
      assert.equal(stateOf(await audit(true), 'tproxy')?.state, 'ok');
      assert.match((await lab.exec(lab.pod, ['ip', '-4', 'rule', 'show'])).stdout, /fwmark 0x539 lookup 133/);
    } finally {
      sandboxes = sandboxes.filter((s) => s !== pod);
    }
  });

  test('rules rewritten to another configuration are drifted, then repaired', async () => {
    const desired = desiredCapture(api);
    assert.ok(desired.kind === 'capture');
    const other = [...desired.args];
    other[other.indexOf('-b') + 1] = '9090';
    const result = await apiLab.meshcap(['apply', ...other]);
    assert.equal(result.code, 0, result.stderr);
    const found = stateOf(await audit(false), 'api')!;
    assert.equal(found.state, 'drifted');
    assert.match(found.details[0]!, /-b is 9090, expected 8080/);
    const repaired = stateOf(await audit(true), 'api')!;
    assert.equal(repaired.state, 'ok', repaired.details.join('\n'));
    assert.equal(repaired.repair?.before, 'drifted');
  });

  test('rules copied into the other iptables backend are duplicated-backend, and not repaired', async () => {
    await sh(webLab, 'iptables-nft-save | iptables-legacy-restore');
    const found = stateOf(await audit(true), 'web')!;
    assert.equal(found.state, 'duplicated-backend');
    assert.match(found.details[0]!, /iptables-legacy \(\d+\) and iptables-nft \(\d+\)/);
    assert.equal(found.repair, undefined);
    await sh(webLab, 'iptables-legacy -t nat -F && iptables-legacy -t nat -X');
    assert.equal(stateOf(await audit(false), 'web')?.state, 'ok');
  });

  test("another tool's rule that defeats the capture is foreign-conflict, named, and left alone", async () => {
    await sh(webLab, 'iptables-nft -t nat -I OUTPUT 1 -p tcp -j ACCEPT');
    const found = stateOf(await audit(true), 'web')!;
    assert.equal(found.state, 'foreign-conflict');
    assert.match(found.details.join('\n'), /-A OUTPUT -p tcp -j ACCEPT/);
    assert.equal(found.repair, undefined);
    const rules = await webLab.save('nft');
    assert.match(rules, /^-A OUTPUT -p tcp -j ACCEPT$/m, 'the foreign rule is not removed');
    await sh(webLab, 'iptables-nft -t nat -D OUTPUT -p tcp -j ACCEPT');
  });

  test('a pod whose rules keep being rewritten is repaired twice, then reported foreign-conflict and not repaired again', async () => {
    history.delete(web.id);
    const flush = () => sh(webLab, 'iptables-nft -t nat -F ISTIO_OUTPUT');
    for (let round = 1; round <= DEFAULT_POLICY.maxRepairs; round++) {
      await flush();
      const pod = stateOf(await audit(true), 'web')!;
      assert.equal(pod.state, 'ok', `round ${round}: ${pod.details.join('\n')}`);
      assert.ok(pod.repair, `round ${round} repairs`);
    }
    await flush();
    const fought = stateOf(await audit(true), 'web')!;
    assert.equal(fought.state, 'foreign-conflict');
    assert.equal(fought.repair, undefined);
    assert.match(fought.details[0]!, /repaired 2 times .* another process keeps rewriting/);
    assert.ok(fought.details.slice(1).some((d) => d.startsWith('found: ')), fought.details.join('\n'));
    assert.ok(fought.details.some((d) => /^no other tool's rule is present/.test(d)), fought.details.join('\n'));
    assert.doesNotMatch(await webLab.save('nft'), /^-A ISTIO_OUTPUT /m, 'the third rewrite is left as the other process wrote it');
  });
});

describe('node audit safety', { skip }, () => {
  test("a sandbox whose netns path is the audit's own namespace is refused before anything runs there", async () => {
    // The System records and runs nothing, so even a broken guard could not touch the machine's namespace.
    const ran: string[] = [];
    const sys = realSystem();
    const spy = { ...sys, run: async (file: string, args: readonly string[]) => (ran.push([file, ...args].join(' ')), { file, args, code: 1, signal: null, stdout: '', stderr: 'not run', notFound: false }) };
    const hostish = (name: string, netnsPath: string): Sandbox => ({ id: name, namespace: 'kube-system', name, uid: 'u', ready: true, annotations: { 'sidecar.istio.io/status': INIT_STATUS }, netnsPath, addresses: ['198.18.0.2'] });
    // PID 1's namespace is compared too where it can be read (here root may lack ptrace on PID 1).
    const pid1Readable = (() => {
      try {
        return statSync('/proc/1/ns/net') !== undefined;
      } catch {
        return false;
      }
    })();
    const sandboxes = [hostish('own', '/proc/self/ns/net'), ...(pid1Readable ? [hostish('pid1', '/proc/1/ns/net')] : [])];
    const result = await auditNode({ sys: spy, log, sandboxes: async () => sandboxes }, { repair: true });
    assert.deepEqual(result.pods.map((p) => p.state), sandboxes.map(() => 'unreadable'));
    for (const pod of result.pods) assert.match(pod.details[0]!, /is the audit's own or the machine's network namespace/);
    assert.deepEqual(ran, [], 'nothing was run in the machine\'s own namespace');
  });
});
