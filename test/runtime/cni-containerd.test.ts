/**
 * CNI mode through a real runtime: a private containerd (Debian's 1.6) in a
 * namespace that plays the node, its CNI config Debian's bridge + host-local
 * + portmap with meshcap-cni chained by `meshcap cni install`, sandboxes
 * created through the CRI with the metadata and annotations of
 * `meshcap inject --cni` output. containerd's PATH has no `node` on it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { injectManifests } from '../../src/inject/manifest.js';
import { DEFAULT_SETTINGS } from '../../src/inject/settings.js';
import { podsOf } from '../golden/inject-compare.js';
import { connectFrom, ensurePlugin, serveIn } from '../helpers/cni-node.js';
import { runCli } from '../helpers/cli.js';
import { podManifest } from '../helpers/manifests.js';
import { runAsync } from '../helpers/netns.js';
import { MESHCAP_BIN } from '../helpers/paths.js';
import { RuntimeNode, runtimeSkip, type Sandbox } from './harness.js';
import { type K8sContainer, kubeletContainer } from './kubelet.js';
import { meshcapImageArchive } from '../helpers/cni-image.js';

const skip = runtimeSkip();
const SUBNET = 60 + (process.pid % 30);

/** What `meshcap inject --cni` makes of a pod with these annotations: its annotations and istio-validation's args. */
function injectCni(annotations: Record<string, string>): { annotations: Record<string, string>; validationArgs: string[]; validation: K8sContainer } {
  const result = injectManifests(podManifest(annotations), { ...DEFAULT_SETTINGS, cni: true });
  const pod = podsOf(result.text)[0]!;
  const validation = ((pod.spec.initContainers ?? []) as unknown as (K8sContainer & { args: string[] })[]).find((c) => c.name === 'istio-validation');
  assert.ok(validation, 'inject --cni writes istio-validation');
  assert.ok(!((pod.spec.initContainers ?? []) as { name: string }[]).some((c) => c.name === 'istio-init'), 'and no istio-init');
  return { annotations: pod.metadata.annotations as Record<string, string>, validationArgs: validation.args, validation };
}

const rules = (pod: Sandbox) => pod.exec('iptables-nft-save', []).stdout + pod.exec('iptables-legacy-save', []).stdout;

describe('CNI mode on a private containerd (CRI)', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshcap-cni-crt-'));
  const confDir = join(dir, 'net.d');
  const tools = join(dir, 'tools');
  const injected = injectCni({ 'traffic.sidecar.istio.io/excludeOutboundPorts': '5432', 'traffic.sidecar.istio.io/excludeOutboundIPRanges': '198.19.0.0/16' });
  let node: RuntimeNode;
  let binDir: string;
  const install = () => runCli(['cni', 'install', '--cni-conf-dir', confDir, '--cni-bin-dir', binDir, '--once'], { env: { MESHCAP_CNI_PLUGIN: ensurePlugin() } });
  const validate = (pod: Sandbox, args: string[], timeout: string) =>
    runAsync('nsenter', [`--net=${pod.netnsPath}`, '--', 'setpriv', '--reuid=1337', '--regid=1337', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', process.execPath, MESHCAP_BIN, ...args, `--probe-timeout=${timeout}`]);

  before(async () => {
    mkdirSync(confDir);
    mkdirSync(tools);
    // What the node offers besides /usr/sbin and /sbin: the runtime, nsenter, unshare and mount, and no node.
    for (const tool of ['nsenter', 'unshare', 'mount', 'containerd', 'containerd-shim-runc-v2', 'runc']) {
      const path = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
      if (path && !path.startsWith('/usr/sbin/') && !path.startsWith('/sbin/')) symlinkSync(path, join(tools, tool));
    }
    writeFileSync(join(confDir, '10-primary.conflist'), JSON.stringify({
      cniVersion: '1.0.0',
      name: `mccni${process.pid}`,
      plugins: [
        { type: 'bridge', bridge: `mccbr${SUBNET}`, isGateway: true, ipMasq: false, hairpinMode: true, ipam: { type: 'host-local', dataDir: join(dir, 'ipam'), ranges: [[{ subnet: `198.18.${SUBNET}.0/24`, gateway: `198.18.${SUBNET}.1` }]], routes: [{ dst: '0.0.0.0/0' }] } },
        { type: 'portmap', capabilities: { portMappings: true }, snat: true },
      ],
    }));
    // The node has no Node.js: containerd, and so every CNI plugin, gets a PATH without it.
    node = await RuntimeNode.start({ label: 'cni', cniConfDir: confDir, env: { PATH: `${tools}:/usr/sbin:/sbin` } });
    binDir = join(node.dir, 'cni-bin');
    // The image istio-validation names, built from this checkout, so the runtime runs it as injected.
    await node.importImage(meshcapImageArchive(injected.validation.image!));
    node.inNode('ip', ['addr', 'add', '198.19.0.1/32', 'dev', 'lo']);
  });
  after(async () => {
    await node?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('startup race: a sandbox created before the entry existed is detected by the validation container (126)', async () => {
    const pod = await node.runSandbox({ name: 'early', annotations: injected.annotations });
    assert.doesNotMatch(rules(pod), /ISTIO_REDIRECT/);
    // The istio-validation init container exactly as injected (uid 1337, no capabilities, read-only root), run by containerd.
    const run = await pod.run(kubeletContainer({ ...injected.validation, args: [...injected.validationArgs, '--probe-timeout=2s'] }, pod));
    assert.equal(run.exitCode, 126, run.log);
    assert.equal(run.log.split('\n')[0], 'iptables validation failed; workload is not ready for Istio.');
    // The same check from the host side, as the proxy uid with no capabilities, agrees.
    const result = await validate(pod, injected.validationArgs, '1s');
    assert.equal(result.code, 126, result.stderr);
    await pod.remove();
    const installed = install();
    assert.equal(installed.code, 0, installed.stderr);
  });

  test('an injected sandbox: outbound TCP lands on 15001 from inside its netns, the exclusions hold, validation passes', async () => {
    const pod = await node.runSandbox({ name: 'web', annotations: injected.annotations });
    assert.match(rules(pod), /-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001/);
    const proxy = await serveIn(pod.netnsPath, [15001, 15006], 'proxy');
    const outside = await serveIn(node.netnsPath, [8080, 5432], 'node');
    try {
      const gateway = `198.18.${SUBNET}.1`;
      assert.match((await connectFrom(pod.netnsPath, gateway, 8080)).reply ?? '', /^proxy \S+ 15001$/);
      assert.match((await connectFrom(pod.netnsPath, gateway, 5432)).reply ?? '', /^node \S+ 5432$/);
      assert.match((await connectFrom(pod.netnsPath, '198.19.0.1', 8080)).reply ?? '', /^node 198\.19\.0\.1 8080$/);
    } finally {
      await proxy.stop();
      await outside.stop();
    }
    const validation = await pod.run(kubeletContainer(injected.validation, pod));
    assert.equal(validation.exitCode, 0, validation.log);
    assert.match(validation.log, /validation passed/);
    // Three DELs: StopPodSandbox twice, then RemovePodSandbox; each must succeed.
    await node.cri.stopPodSandbox(pod.id);
    await node.cri.stopPodSandbox(pod.id);
    await node.cri.removePodSandbox(pod.id);
  });

  test('a sandbox without injection gets no rules', async () => {
    const pod = await node.runSandbox({ name: 'plain', annotations: { 'kubernetes.io/config.source': 'api' } });
    assert.doesNotMatch(rules(pod), /ISTIO/);
    await pod.remove();
  });

  test('20 sandboxes created in parallel are all captured', async () => {
    const pods = await Promise.all(Array.from({ length: 20 }, (_, i) => node.runSandbox({ name: `par-${i}`, annotations: injected.annotations })));
    for (const pod of pods) assert.match(rules(pod), /-A ISTIO_OUTPUT -j ISTIO_REDIRECT/, pod.config.metadata.name);
    await Promise.all(pods.map((p) => p.remove()));
  });

  test('a meshcap-cni error reaches RunPodSandbox as containerd prints it', async () => {
    const bad = { ...injected.annotations, 'traffic.sidecar.istio.io/excludeOutboundPorts': 'postgres' };
    await assert.rejects(node.runSandbox({ name: 'bad', annotations: bad }), (error: Error) => {
      assert.match(error.message, /plugin type="meshcap-cni" failed \(add\): invalid annotation traffic\.sidecar\.istio\.io\/excludeOutboundPorts/);
      if (process.env.MESHCAP_KEEP_CNI_ERROR) writeFileSync(process.env.MESHCAP_KEEP_CNI_ERROR, error.message);
      return true;
    });
  });

  test('after uninstall, new sandboxes start without rules and no config names meshcap-cni', async () => {
    const result = runCli(['cni', 'uninstall', '--cni-conf-dir', confDir, '--cni-bin-dir', binDir]);
    assert.equal(result.code, 0, result.stderr);
    for (const name of readdirSync(confDir)) assert.doesNotMatch(readFileSync(join(confDir, name), 'utf8'), /"type": *"meshcap-cni"/);
    // containerd reloads its CNI config on change; poll until a new sandbox starts uncaptured.
    const deadline = Date.now() + 20_000;
    for (let i = 0; ; i++) {
      const pod = await node.runSandbox({ name: `after-${i}`, annotations: injected.annotations });
      const captured = /ISTIO_REDIRECT/.test(rules(pod));
      await pod.remove();
      if (!captured) break;
      assert.ok(Date.now() < deadline, 'containerd still ran meshcap-cni 20 s after uninstall');
      await new Promise((r) => setTimeout(r, 200));
    }
  });
});
