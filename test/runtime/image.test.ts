/**
 * The image, built from the Dockerfile as written (buildah --pull=never over a local stand-in for its FROM
 * image, scripts/image/build.sh), holds everything bin/meshcap loads and runs under a real containerd.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT } from '../helpers/paths.js';
import { RuntimeNode, runtimeSkip, type Sandbox } from './harness.js';
import { injectPod, istioInit, MESHCAP_IMAGE, MESHCAP_PLAIN_IMAGE, meshRules, meshcapImageCompressedSize, podRules, startNodeWithImage, STACK_TRACE } from './fixtures.js';
import { kubeletContainer } from './kubelet.js';

const skip = runtimeSkip();
const version = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

describe('the meshcap image (Dockerfile as written, no registry)', { skip }, () => {
  let node: RuntimeNode;
  let pod: Sandbox;
  before(async () => {
    node = await startNodeWithImage('image');
    pod = await node.runSandbox({ name: 'image-check' });
  });
  after(() => node?.stop());

  // Debian slim, the netfilter tools and one copy of node: the single executable (~76 MB).
  it('is at most 90 MB compressed', () => {
    const size = meshcapImageCompressedSize();
    assert.ok(size > 30e6, `implausibly small: ${size}`);
    assert.ok(size <= 90e6, `compressed size ${(size / 1e6).toFixed(1)} MB > 90 MB`);
  });

  it('runs `meshcap --version` through its ENTRYPOINT as its default user', async () => {
    const run = await pod.run(pod.container({ name: 'version', image: MESHCAP_IMAGE, args: ['--version'] }));
    assert.equal(run.exitCode, 0, run.log);
    assert.match(run.log, new RegExp(`\\b${version.replaceAll('.', '\\.')}\\b`));
    assert.doesNotMatch(run.log, /ERR_MODULE_NOT_FOUND|Cannot find module/);
  });

  it('holds the tools meshcap runs, only runtime files, and nothing from the build (CA bundle, npmrc)', async () => {
    const script = [
      'id -u',
      'for t in iptables-nft-restore iptables-nft-save iptables-legacy-restore iptables-legacy-save ip6tables-nft-restore ip6tables-legacy-restore nft ip modprobe nsenter; do command -v $t >/dev/null || echo "missing $t"; done',
      'iptables --version',
      'ls /opt/meshcap', 'command -v node || echo "no node"',
      'echo "meshcap -> $(readlink /usr/local/bin/meshcap)"',
      'for f in /usr/local/etc/build-ca.crt /usr/local/etc/npmrc /opt/meshcap/dist/src /opt/meshcap/src /opt/meshcap/node_modules /var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease; do [ -e $f ] && echo "leftover $f"; done',
      'true',
    ].join('; ');
    const run = await pod.run(pod.container({ name: 'contents', image: MESHCAP_IMAGE, command: ['/bin/sh', '-c', script] }));
    assert.equal(run.exitCode, 0, run.log);
    const lines = run.log.split('\n');
    assert.equal(lines[0], '65532');
    assert.doesNotMatch(run.log, /^missing /m);
    assert.doesNotMatch(run.log, /^leftover /m);
    assert.match(run.log, /iptables v1\.8\.\d+ \(nf_tables\)/);
    // The single executable alone: node, meshcap's snapshot and its assets in one file; no second node.
    assert.match(run.log, /^meshcap\nno node$/m);
    assert.match(run.log, /^meshcap -> \/opt\/meshcap\/meshcap$/m);
  });
});

// The other suites run on overlayfs (as real nodes do, and fast); this one proves the image and
// istio-init under the native snapshotter too, which copies the image for every container.
describe('the meshcap image under the native snapshotter', { skip }, () => {
  let node: RuntimeNode;
  before(async () => {
    node = await startNodeWithImage('native', { snapshotter: 'native' });
  });
  after(() => node?.stop());

  it('istio-init as injected exits 0 with the 18 mesh rules in place', async () => {
    assert.equal(node.snapshotter, 'native');
    const injected = injectPod();
    const pod = await node.runSandbox({ name: 'native-init', namespace: 'demo', annotations: injected.annotations, labels: injected.labels });
    const run = await pod.run(kubeletContainer(istioInit(injected), pod));
    assert.equal(run.exitCode, 0, run.log);
    assert.doesNotMatch(run.log, STACK_TRACE);
    assert.equal(meshRules(podRules(pod, 'nft')).length, 18);
    await pod.remove();
  });
});

// The Dockerfile's other branch, built on purpose (scripts/image/build.sh --plain: MESHCAP_SEA=0), as a node
// that cannot build a single executable would build it: node, bin/meshcap and the one-file build.
describe("the plain-path image (the Dockerfile's fallback, MESHCAP_SEA=0)", { skip }, () => {
  let node: RuntimeNode;
  before(async () => {
    node = await startNodeWithImage('plain', { variant: 'plain' });
  });
  after(() => node?.stop());

  it('ships node and the one-file build instead of the single executable, and runs them as its default user', async () => {
    const pod = await node.runSandbox({ name: 'plain-check' });
    const script = ['id -u', 'command -v node', 'readlink /opt/meshcap/meshcap', 'ls /opt/meshcap/dist', 'meshcap --version'].join('; ');
    const run = await pod.run(pod.container({ name: 'contents', image: MESHCAP_PLAIN_IMAGE, command: ['/bin/sh', '-c', script] }));
    assert.equal(run.exitCode, 0, run.log);
    const lines = run.log.split('\n');
    assert.equal(lines[0], '65532');
    assert.equal(lines[1], '/usr/local/bin/node');
    assert.equal(lines[2], 'bin/meshcap');
    assert.equal(lines[3], 'meshcap.cjs');
    assert.match(lines[4] ?? '', new RegExp(`\\b${version.replaceAll('.', '\\.')}\\b`));
    assert.doesNotMatch(run.log, /ERR_MODULE_NOT_FOUND|Cannot find module/);
    await pod.remove();
  });

  it('istio-init as injected, from this image, exits 0 with the 18 mesh rules in place', async () => {
    const injected = injectPod();
    const pod = await node.runSandbox({ name: 'plain-init', namespace: 'demo', annotations: injected.annotations, labels: injected.labels });
    const run = await pod.run(kubeletContainer({ ...istioInit(injected), image: MESHCAP_PLAIN_IMAGE }, pod));
    assert.equal(run.exitCode, 0, run.log);
    assert.doesNotMatch(run.log, STACK_TRACE);
    assert.match(run.log, /capture in place \(iptables-nft\)/);
    assert.equal(meshRules(podRules(pod, 'nft')).length, 18);
    await pod.remove();
  });
});
