/**
 * meshcap-cni for real, without a runtime: Debian's bridge + host-local +
 * portmap chained with the single executable that `meshcap cni install`
 * put in the bin dir, run the way libcni runs a conflist, from a namespace
 * that plays the node, with no `node` on the plugins' PATH. Real pod netns,
 * real rules, real connections.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Attachment, CniNode, cniSkipReason, connectFrom, INJECTED, serveIn, type Served } from '../helpers/cni-node.js';
import { runAsync } from '../helpers/netns.js';
import { MESHCAP_BIN } from '../helpers/paths.js';
import { podManifest } from '../helpers/manifests.js';
import { podsOf } from '../golden/inject-compare.js';
import { injectManifests } from '../../src/inject/manifest.js';
import { DEFAULT_SETTINGS } from '../../src/inject/settings.js';

const skip = cniSkipReason();

async function save(node: CniNode, a: Attachment): Promise<string> {
  const out: string[] = [];
  for (const tool of ['iptables-nft-save', 'iptables-legacy-save']) out.push((await node.inPod(a, [tool])).stdout.replace(/^#.*$/gm, '').replace(/\[\d+:\d+\]/g, ''));
  return out.join('');
}

describe('meshcap-cni chained after bridge and portmap (direct libcni-style exec)', { skip }, () => {
  let node: CniNode;
  const served: Served[] = [];
  before(() => {
    node = new CniNode('plug');
    node.writePrimary();
    const install = node.install();
    assert.equal(install.code, 0, install.stderr);
    // Something outside the pod to connect to: the node answers on the gateway and on an excluded network.
    spawnSync('ip', ['-n', node.ns, 'addr', 'add', '198.19.0.1/32', 'dev', 'lo']);
  });
  after(async () => {
    await Promise.all(served.splice(0).map((s) => s.stop()));
    node?.destroy();
  });

  test('the plugins run with no node binary on their PATH', async () => {
    const r = await runAsync('env', ['-i', `PATH=${node.hostPath}`, '/bin/sh', '-c', 'command -v node || echo none']);
    assert.equal(r.stdout.trim(), 'none');
    assert.equal(node.effectiveConfig().conf.plugins.at(-1).type, 'meshcap-cni');
  });

  test('VERSION answers the supported versions', async () => {
    const r = await node.exec('meshcap-cni', { PATH: node.hostPath, CNI_COMMAND: 'VERSION' }, '{"cniVersion":"0.4.0"}');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { cniVersion: '0.4.0', supportedVersions: ['0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
  });

  test('an injected pod: ADD passes the result through, outbound TCP lands on 15001, the exclusions hold', async () => {
    const pod = node.newPod(INJECTED);
    const add = await node.add(pod);
    assert.ok(add.ok, `${add.failed}: ${add.run.stdout} ${add.logs}`);
    const gateway = `198.18.${node.subnet}.1`;
    // The result is bridge's, passed through portmap and meshcap-cni unchanged.
    assert.equal(add.result.ips[0].gateway, gateway);
    assert.ok(add.result.interfaces.some((i: { sandbox?: string }) => i.sandbox === pod.netns));
    assert.match(await save(node, pod), /-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001/);
    served.push(await serveIn(pod.netns, [15001, 15006], 'proxy'));
    served.push(await serveIn(`/run/netns/${node.ns}`, [8080, 5432], 'node'));
    const captured = await connectFrom(pod.netns, gateway, 8080);
    assert.ok(captured.ok, captured.error);
    assert.match(captured.reply!, /^proxy \S+ 15001$/, 'app outbound lands on the proxy port');
    const excludedPort = await connectFrom(pod.netns, gateway, 5432);
    assert.match(excludedPort.reply ?? excludedPort.error!, /^node \S+ 5432$/, 'excludeOutboundPorts 5432 goes out');
    const excludedCidr = await connectFrom(pod.netns, '198.19.0.1', 8080);
    assert.match(excludedCidr.reply ?? excludedCidr.error!, /^node 198\.19\.0\.1 8080$/, 'excludeOutboundIPRanges 198.19.0.0/16 goes out');
    const proxyOwn = await connectFrom(pod.netns, gateway, 8080, 1337);
    assert.match(proxyOwn.reply ?? proxyOwn.error!, /^node \S+ 8080$/, 'the proxy uid bypasses');
    await Promise.all(served.splice(0).map((s) => s.stop()));

    // CHECK right after ADD: 0, quickly, and read-only.
    const before = await save(node, pod);
    const started = Date.now();
    const check = await node.check(pod, add.result);
    assert.ok(check.ok, `${check.failed}: ${check.run.stdout}${check.run.stderr}`);
    assert.ok(Date.now() - started < 5000);
    assert.equal(await save(node, pod), before, 'CHECK changed nothing');

    // Three DELs, as containerd sends them: the first with netns and prevResult, the others with neither.
    const dels = [await node.del(pod, { prevResult: add.result }), await node.del(pod, { netns: '' }), await node.del(pod, { netns: '' })];
    for (const del of dels) assert.equal(del.codes['meshcap-cni'], 0, JSON.stringify(del.runs['meshcap-cni']));
    assert.equal(dels[0]!.runs['meshcap-cni']!.stdout, '', 'DEL prints nothing');
    node.removePod(pod);
  });

  test('a pod without injection: passed through, no rules anywhere', async () => {
    const pod = node.newPod({ 'kubernetes.io/config.source': 'api' });
    const add = await node.add(pod);
    assert.ok(add.ok, add.run.stdout);
    assert.match(add.logs, /skipped: not injected/);
    assert.doesNotMatch(await save(node, pod), /ISTIO/);
    await node.del(pod, { prevResult: add.result });
    node.removePod(pod);
  });

  test('CHECK fails with 101 when the rules are gone, 102 when they differ (with the live flags), and never writes', async () => {
    const pod = node.newPod(INJECTED);
    const add = await node.add(pod);
    assert.ok(add.ok, add.run.stdout);
    // Different rules: what istio-init would write with another proxy port.
    const other = await node.inPod(pod, [process.execPath, join(process.cwd(), 'bin', 'meshcap'), 'istio-iptables', '-p', '15009', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-b', '*', '-d', '15090,15021,15020']);
    assert.equal(other.code, 0, other.stderr);
    const differs = await node.check(pod, add.result);
    assert.equal(differs.failed, 'meshcap-cni');
    const error = JSON.parse(differs.run.stdout);
    assert.equal(error.code, 102, differs.run.stdout);
    assert.match(error.details, /15009/);
    for (const tool of ['iptables-nft', 'iptables-legacy']) await node.inPod(pod, [process.execPath, join(process.cwd(), 'bin', 'meshcap'), 'clean']).then(() => tool);
    const before = await save(node, pod);
    const missing = await node.check(pod, add.result);
    assert.equal(JSON.parse(missing.run.stdout).code, 101, missing.run.stdout);
    assert.equal(await save(node, pod), before);
    await node.del(pod, { prevResult: add.result });
    node.removePod(pod);
  });

  test('CHECK fails with 103 when the mesh rules are in both iptables backends, and never writes', async () => {
    const pod = node.newPod(INJECTED);
    const add = await node.add(pod);
    assert.ok(add.ok, add.run.stdout);
    // The pod's own rules copied into the other backend: what a second capture through the other iptables leaves.
    const nft = (await node.inPod(pod, ['iptables-nft-save'])).stdout;
    const [from, to] = /ISTIO_REDIRECT/.test(nft) ? ['iptables-nft-save', 'iptables-legacy-restore'] : ['iptables-legacy-save', 'iptables-nft-restore'];
    const copied = await node.inPod(pod, [to], (await node.inPod(pod, [from])).stdout);
    assert.equal(copied.code, 0, copied.stderr);
    const before = await save(node, pod);
    assert.equal(before.match(/-A ISTIO_OUTPUT -j ISTIO_REDIRECT/g)?.length, 2, 'both backends hold the capture');
    const conflict = await node.check(pod, add.result);
    assert.equal(conflict.failed, 'meshcap-cni');
    const error = JSON.parse(conflict.run.stdout);
    assert.equal(error.code, 103, conflict.run.stdout);
    assert.match(error.msg, /mesh rules are in more than one backend/);
    assert.match(error.details, /iptables-legacy and iptables-nft|iptables-nft and iptables-legacy/);
    assert.equal(await save(node, pod), before, 'CHECK changed nothing');
    await node.del(pod, { prevResult: add.result });
    node.removePod(pod);
  });

  test('an invalid capture annotation fails ADD with code 7 naming it, and writes no rule', async () => {
    const pod = node.newPod({ ...INJECTED, 'traffic.sidecar.istio.io/excludeOutboundPorts': 'http' });
    const add = await node.add(pod);
    assert.equal(add.failed, 'meshcap-cni');
    const error = JSON.parse(add.run.stdout);
    assert.equal(error.code, 7);
    assert.match(error.msg, /excludeOutboundPorts.*"http"/);
    assert.doesNotMatch(await save(node, pod), /ISTIO/);
    const del = await node.del(pod);
    assert.equal(del.codes['meshcap-cni'], 0);
    node.removePod(pod);
  });

  test("the plugin's rules are byte for byte what istio-init writes for the same pod (inject vs inject --cni)", async () => {
    const user = { 'traffic.sidecar.istio.io/excludeOutboundPorts': '5432,6379', 'traffic.sidecar.istio.io/excludeOutboundIPRanges': '198.19.0.0/16', 'traffic.sidecar.istio.io/excludeInboundPorts': '9000' };
    const init = podsOf(injectManifests(podManifest(user), DEFAULT_SETTINGS).text)[0]!;
    const initArgs = ((init.spec.initContainers as any[]).find((c) => c.name === 'istio-init').args as string[]);
    const cni = podsOf(injectManifests(podManifest(user), { ...DEFAULT_SETTINGS, cni: true }).text)[0]!;
    const byInit = node.newPod({ 'kubernetes.io/config.source': 'api' });
    const byPlugin = node.newPod(cni.metadata.annotations as Record<string, string>);
    assert.ok((await node.add(byInit)).ok);
    const ran = await node.inPod(byInit, [process.execPath, MESHCAP_BIN, ...initArgs]);
    assert.equal(ran.code, 0, ran.stderr);
    assert.ok((await node.add(byPlugin)).ok);
    const a = await save(node, byInit);
    assert.match(a, /--dport 6379 -j RETURN/);
    assert.equal(await save(node, byPlugin), a);
    node.removePod(byInit);
    node.removePod(byPlugin);
  });

  test('ADD again is a no-op; two ADDs at once both succeed; ADD converges a netns holding another config; the runtime\'s env does not leak in', async () => {
    const pod = node.newPod(INJECTED);
    const first = await node.add(pod);
    assert.ok(first.ok);
    const desired = await save(node, pod);
    const entry = { cniVersion: '1.0.0', name: 'n', type: 'meshcap-cni', stateDir: join(node.dir, 'state'), runtimeConfig: { 'io.kubernetes.cri.pod-annotations': INJECTED }, prevResult: first.result };
    const env = { PATH: node.hostPath, CNI_COMMAND: 'ADD', CNI_CONTAINERID: pod.containerId, CNI_NETNS: pod.netns, CNI_IFNAME: 'eth0', CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${pod.pod.name}` };
    const again = await node.exec('meshcap-cni', env, JSON.stringify(entry));
    assert.equal(again.code, 0, again.stdout);
    assert.match(again.stderr, /already in place/);
    assert.deepEqual(JSON.parse(again.stdout), first.result);
    const both = await Promise.all([node.exec('meshcap-cni', env, JSON.stringify(entry)), node.exec('meshcap-cni', env, JSON.stringify(entry))]);
    for (const r of both) assert.equal(r.code, 0, r.stdout);
    assert.equal(await save(node, pod), desired);
    // Another config's rules (a different proxy port), then ADD: converged to the pod's own.
    const other = await node.inPod(pod, [process.execPath, MESHCAP_BIN, 'istio-iptables', '-p', '15009', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-b', '*']);
    assert.equal(other.code, 0, other.stderr);
    // The runtime's environment carries istio-iptables variables: they must not steer the capture.
    const converged = await node.exec('meshcap-cni', { ...env, INBOUND_CAPTURE_PORT: '15999', PROXY_PORT: '15777', OUTBOUND_PORTS_EXCLUDE: '1' }, JSON.stringify(entry));
    assert.equal(converged.code, 0, converged.stdout);
    assert.equal(await save(node, pod), desired);
    assert.ok((await node.check(pod, first.result)).ok);
    node.removePod(pod);
  });

  test('20 pods at once are all captured (no xtables lock contention)', async () => {
    const pods = Array.from({ length: 20 }, () => node.newPod(INJECTED));
    const adds = await Promise.all(pods.map((p) => node.add(p)));
    adds.forEach((add, i) => assert.ok(add.ok, `pod ${i}: ${add.failed}: ${add.run.stdout}`));
    for (const pod of pods) assert.match(await save(node, pod), /-A ISTIO_OUTPUT -j ISTIO_REDIRECT/);
    await Promise.all(pods.map((p, i) => node.del(p, { prevResult: adds[i]!.result })));
    pods.forEach((p) => node.removePod(p));
  });

  test('STATUS answers 0; GC removes lock files of attachments not listed and touches no netns', async () => {
    const status = await node.exec('meshcap-cni', { PATH: node.hostPath, CNI_COMMAND: 'STATUS' }, JSON.stringify({ cniVersion: '1.1.0', name: 'n', type: 'meshcap-cni', stateDir: join(node.dir, 'state') }));
    assert.equal(status.code, 0, status.stdout);
    const pod = node.newPod(INJECTED);
    const entry = { cniVersion: '1.1.0', name: 'n', type: 'meshcap-cni', stateDir: join(node.dir, 'state'), capabilities: { 'io.kubernetes.cri.pod-annotations': true }, runtimeConfig: { 'io.kubernetes.cri.pod-annotations': INJECTED } };
    const env = { PATH: node.hostPath, CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'keep-me', CNI_NETNS: pod.netns, CNI_IFNAME: 'eth0', CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=gc' };
    assert.equal((await node.exec('meshcap-cni', env, JSON.stringify(entry))).code, 0);
    assert.equal((await node.exec('meshcap-cni', { ...env, CNI_CONTAINERID: 'stale-one' }, JSON.stringify(entry))).code, 0);
    const gc = await node.exec('meshcap-cni', { PATH: node.hostPath, CNI_COMMAND: 'GC' }, JSON.stringify({ ...entry, 'cni.dev/valid-attachments': [{ containerID: 'keep-me', ifname: 'eth0' }] }));
    assert.equal(gc.code, 0, gc.stdout);
    assert.deepEqual(readdirSync(join(node.dir, 'state', 'locks')), ['keep-me.lock']);
    assert.match(await save(node, pod), /ISTIO_REDIRECT/, 'GC left the capture alone');
    node.removePod(pod);
  });

  test('after uninstall no config names meshcap-cni and new pods start without rules', async () => {
    const result = node.uninstall();
    assert.equal(result.code, 0, result.stderr);
    for (const name of readdirSync(node.confDir)) assert.doesNotMatch(readFileSync(join(node.confDir, name), 'utf8'), /"type": *"meshcap-cni"/);
    const pod = node.newPod(INJECTED);
    const add = await node.add(pod);
    assert.ok(add.ok, add.run.stdout);
    assert.doesNotMatch(await save(node, pod), /ISTIO/);
    await node.del(pod, { prevResult: add.result });
    node.removePod(pod);
    assert.equal(node.install().code, 0);
  });
});

describe('meshcap-cni in owned-file and standalone (Multus) modes', { skip }, () => {
  let node: CniNode;
  before(() => {
    node = new CniNode('modes');
    node.writePrimary();
  });
  after(() => node?.destroy());

  test('owned: the runtime reads 00-meshcap.conflist (the primary\'s plugins, then meshcap-cni) and the pod is captured', async () => {
    assert.equal(node.install('--config-mode', 'owned').code, 0);
    const { path, conf } = node.effectiveConfig();
    assert.match(path, /00-meshcap\.conflist$/);
    assert.deepEqual(conf.plugins.map((p: { type: string }) => p.type), ['bridge', 'portmap', 'meshcap-cni']);
    const pod = node.newPod(INJECTED);
    const add = await node.add(pod);
    assert.ok(add.ok, add.run.stdout);
    assert.match(await save(node, pod), /-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001/);
    node.removePod(pod);
    assert.equal(node.uninstall().code, 0);
  });

  test('standalone: called alone as Multus calls a delegate (no prevResult), it prints a minimal result and captures', async () => {
    assert.equal(node.install('--config-mode', 'standalone').code, 0);
    const conf = JSON.parse(readFileSync(join(node.confDir, 'ZZZ-meshcap-cni.conf'), 'utf8'));
    const pod = node.newPod(INJECTED);
    const stdin = JSON.stringify({ ...conf, runtimeConfig: { 'io.kubernetes.cri.pod-annotations': INJECTED } });
    const r = await node.exec('meshcap-cni', { PATH: node.hostPath, CNI_COMMAND: 'ADD', CNI_CONTAINERID: pod.containerId, CNI_NETNS: pod.netns, CNI_IFNAME: 'net1', CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=multus' }, stdin);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { cniVersion: '1.0.0', interfaces: [], ips: [], dns: {} });
    assert.match(await save(node, pod), /-A ISTIO_OUTPUT -j ISTIO_REDIRECT/);
    node.removePod(pod);
  });
});
