/**
 * Scope item 25: the capture never asks the node's name service. A node
 * whose nsswitch.conf says `passwd: files hesiod` resolves uids through DNS
 * (glibc's hesiod: <name>.passwd.ns.example.invalid TXT), to a resolver that
 * is a recording listener in the node's netns. The plugins run in a
 * test-owned mount namespace with an overlay on /etc (the machine's /etc is
 * never written); without meshcap-cni's private mount namespace the
 * `--uid-owner 1337` (iptables) or `skuid 1337` (nft) of the capture is
 * looked up there, with it nothing is.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CniNode, cniSkipReason, INJECTED } from '../helpers/cni-node.js';
import { dnsListenerIn, type DnsListener } from '../helpers/dns-listener.js';
import { runAsync } from '../helpers/netns.js';

function skipReason(): string | false {
  const base = cniSkipReason();
  if (base) return base;
  if (!['/usr/lib/x86_64-linux-gnu/libnss_hesiod.so.2', '/lib/x86_64-linux-gnu/libnss_hesiod.so.2', '/usr/lib/aarch64-linux-gnu/libnss_hesiod.so.2'].some((p) => spawnSync('test', ['-e', p]).status === 0)) return 'skipped: libnss_hesiod.so.2 (libc6) not found';
  return false;
}
const skip = skipReason();

describe('meshcap-cni keeps the node name service out of the capture (nsswitch.conf -> hesiod -> DNS)', { skip }, () => {
  let node: CniNode;
  let dns: DnsListener;
  let resolver: string;
  /** Runs a command in a fresh test-owned mount namespace whose /etc is an overlay holding the hesiod setup. */
  let inTestEtc: string[];
  before(async () => {
    node = new CniNode('nss');
    node.writePrimary();
    assert.equal(node.install().code, 0);
    resolver = `198.18.${node.subnet}.53`;
    spawnSync('ip', ['-n', node.ns, 'addr', 'add', `${resolver}/32`, 'dev', 'lo']);
    const upper = join(node.dir, 'etc-upper');
    const work = join(node.dir, 'etc-work');
    mkdirSync(upper);
    mkdirSync(work);
    writeFileSync(join(upper, 'nsswitch.conf'), 'passwd: files hesiod\ngroup: files hesiod\nhosts: files dns\n');
    writeFileSync(join(upper, 'hesiod.conf'), 'lhs=.ns\nrhs=.example.invalid\n');
    writeFileSync(join(upper, 'resolv.conf'), `nameserver ${resolver}\noptions timeout:1 attempts:1\n`);
    // A work dir per mount: the previous namespace's overlay may not be released yet.
    inTestEtc = ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', `mount -t overlay overlay -o "lowerdir=/etc,upperdir=${upper},workdir=$(mktemp -d -p ${work})" /etc && exec "$@"`, 'sh'];
    const probe = await runAsync(inTestEtc[0]!, [...inTestEtc.slice(1), 'cat', '/etc/hesiod.conf']);
    assert.equal(probe.stdout, 'lhs=.ns\nrhs=.example.invalid\n', `the overlay on /etc could not be made: ${probe.stderr}`);
    node.execPrefix = inTestEtc;
    dns = await dnsListenerIn(`/run/netns/${node.ns}`, resolver);
  });
  after(async () => {
    await dns?.stop();
    node?.destroy();
  });

  test('ADD of an injected pod sends no DNS query; the same uid match outside the sandbox does', async () => {
    const pod = node.newPod(INJECTED);
    const add = await node.add(pod);
    assert.ok(add.ok, `${add.failed}: ${add.run.stdout} ${add.logs}`);
    assert.doesNotMatch(add.logs, /without a private mount namespace/);
    assert.match((await node.inPod(pod, ['iptables-save'])).stdout + (await node.inPod(pod, ['iptables-legacy-save'])).stdout, /--uid-owner 1337/);
    assert.deepEqual(await dns.flush(), [], 'the capture asked the name service');
    const check = await node.check(pod, add.result);
    assert.ok(check.ok, `${check.failed}: ${check.run.stdout}`);
    assert.deepEqual(await dns.flush(), [], 'CHECK asked the name service');

    // The test can fail: the same mount namespace, the same pod netns, one uid match without the sandbox.
    const direct = await runAsync(inTestEtc[0]!, [...inTestEtc.slice(1), 'nsenter', `--net=${pod.netns}`, '--', 'iptables-nft', '-t', 'mangle', '-A', 'OUTPUT', '-m', 'owner', '--uid-owner', '1337', '-j', 'RETURN']);
    assert.equal(direct.code, 0, direct.stderr);
    const queries = await dns.flush();
    assert.ok(queries.some((q) => q.endsWith(' 1337.passwd.ns.example.invalid')), `no hesiod query seen: ${JSON.stringify(queries)}`);
    node.removePod(pod);
  });

  test('native nftables too: ADD sends no query, while nft alone looks the uid up', async () => {
    const pod = node.newPod({ ...INJECTED, 'proxy.istio.io/config': 'proxyMetadata:\n  NATIVE_NFTABLES: "true"\n' });
    const add = await node.add(pod);
    assert.ok(add.ok, `${add.failed}: ${add.run.stdout} ${add.logs}`);
    assert.match((await node.inPod(pod, ['nft', 'list', 'ruleset'])).stdout, /skuid 1337/);
    assert.deepEqual(await dns.flush(), [], 'the capture asked the name service');
    const direct = await runAsync(inTestEtc[0]!, [...inTestEtc.slice(1), 'nsenter', `--net=${pod.netns}`, '--', 'nft', '-f', '-'], { input: 'table inet nsstest {\n  chain o {\n    type filter hook output priority 0;\n    meta skuid 1337 return\n  }\n}\n' });
    assert.equal(direct.code, 0, direct.stderr);
    const queries = await dns.flush();
    assert.ok(queries.some((q) => q.includes('.passwd.ns.example.invalid')), `no hesiod query seen: ${JSON.stringify(queries)}`);
    node.removePod(pod);
  });

  test('without unshare on the node the capture still applies, with a warning, and the lookup does happen', async () => {
    await dns.flush();
    // The pod network first (meshcap-cni skips a pod without injection), then meshcap-cni alone for the injected pod.
    const pod = node.newPod({ 'kubernetes.io/config.source': 'api' });
    const net = await node.add(pod);
    assert.ok(net.ok, net.run.stdout);
    const tools = join(node.dir, 'tools-no-unshare');
    mkdirSync(tools);
    for (const tool of ['nsenter', 'mount']) symlinkSync(join('/usr/bin', tool), join(tools, tool));
    const entry = { cniVersion: '1.0.0', name: 'n', type: 'meshcap-cni', stateDir: join(node.dir, 'state'), runtimeConfig: { 'io.kubernetes.cri.pod-annotations': INJECTED }, prevResult: net.result };
    const env = { PATH: `${tools}:/usr/sbin:/sbin`, CNI_COMMAND: 'ADD', CNI_CONTAINERID: pod.containerId, CNI_NETNS: pod.netns, CNI_IFNAME: 'eth0', CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${pod.pod.name}` };
    const add = await node.exec('meshcap-cni', env, JSON.stringify(entry));
    assert.equal(add.code, 0, add.stdout + add.stderr);
    assert.match(add.stderr, /warning: capture runs without a private mount namespace \('unshare' \(util-linux\) is not on the node's PATH\)/);
    assert.match(add.stderr, /capture applied/);
    const queries = await dns.flush();
    assert.ok(queries.some((q) => q.includes('.passwd.ns.example.invalid')), `no hesiod query seen: ${JSON.stringify(queries)}`);
    node.removePod(pod);
  });
});
