/**
 * The deploy/ manifests' containers started from the image as the manifests run them: the webhook
 * Deployment (its user, read-only root, drop ALL, TLS from a Secret volume) answers an AdmissionReview
 * over TLS; node-prep's DaemonSet init container on a kernel with netfilter built in and no /lib/modules;
 * the CNI agent's DaemonSet container installs the image's own executable on the node as meshcap-cni.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { admissionReview, patchOf, responseOf } from '../helpers/admission.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { until } from '../helpers/poll.js';
import { makeCert } from '../helpers/tls.js';
import { RuntimeNode, runtimeSkip, type Sandbox } from './harness.js';
import { kubeletContainer, type K8sContainer, type K8sSecurityContext, type K8sVolume } from './kubelet.js';
import { MESHCAP_IMAGE, startNodeWithImage, STACK_TRACE } from './fixtures.js';

const skip = runtimeSkip();

interface PodTemplate {
  metadata: { labels?: Record<string, string> };
  spec: { securityContext?: K8sSecurityContext; containers: K8sContainer[]; initContainers?: K8sContainer[]; volumes?: K8sVolume[] };
}

function templateOf(file: string, kind: string): PodTemplate {
  for (const doc of parseAllDocuments(readFileSync(join(REPO_ROOT, 'deploy', file), 'utf8'))) {
    const object = doc.toJS() as { kind?: string; spec?: { template?: PodTemplate } } | null;
    if (object?.kind === kind && object.spec?.template) return object.spec.template;
  }
  throw new Error(`no ${kind} in deploy/${file}`);
}

/** An HTTPS request from the node's netns (where the pod is reachable), trusting only `caFile`. */
function httpsFromNode(node: RuntimeNode, url: string, caFile: string, body?: string): { status?: number; body?: string; error?: string } {
  const script = `
const https = require('node:https');
const [url, caFile, body] = process.argv.slice(1);
const req = https.request(url, { method: body ? 'POST' : 'GET', ca: require('node:fs').readFileSync(caFile), servername: 'localhost',
  headers: body ? { 'content-type': 'application/json' } : {}, timeout: 3000 }, (res) => {
  let text = ''; res.on('data', (c) => (text += c)); res.on('end', () => console.log(JSON.stringify({ status: res.statusCode, body: text })));
});
req.on('timeout', () => req.destroy(new Error('timeout')));
req.on('error', (e) => console.log(JSON.stringify({ error: e.message })));
req.end(body || undefined);`;
  const result = spawnSync('nsenter', [`--net=${node.netnsPath}`, '--', process.execPath, '-e', script, url, caFile, body ?? ''], { encoding: 'utf8', timeout: 20_000, env: {} });
  try {
    return JSON.parse(result.stdout) as { status?: number; body?: string; error?: string };
  } catch {
    return { error: `exit ${result.status}: ${result.stderr}` };
  }
}

describe('deploy/ manifests run from the image under containerd (CRI)', { skip }, () => {
  let node: RuntimeNode;
  before(async () => {
    node = await startNodeWithImage('deploy');
  });
  after(() => node?.stop());

  it('the webhook as deploy/webhook.yaml runs it (uid 65532, read-only root, drop ALL) answers an AdmissionReview over TLS', async () => {
    const template = templateOf('webhook.yaml', 'Deployment');
    const container = template.spec.containers.find((c) => c.name === 'webhook')!;
    assert.equal(container.image, MESHCAP_IMAGE);
    assert.equal(container.securityContext?.readOnlyRootFilesystem, true);
    const pod: Sandbox = await node.runSandbox({ name: 'meshcap-webhook', namespace: 'meshcap-system', labels: template.metadata.labels });
    // The Secret volume: the kubelet writes its keys as files, mode 0644 (defaultMode 420).
    const secret = join(node.dir, 'secret-tls');
    mkdirSync(secret, { mode: 0o755 });
    chmodSync(secret, 0o755);
    const cert = makeCert(secret, 'tls');
    chmodSync(cert.keyFile, 0o644);
    const config = kubeletContainer(container, pod, { podSecurityContext: template.spec.securityContext, volumes: template.spec.volumes, volumeDirs: { tls: secret }, imageUid: 65532 });
    const id = await pod.start(config);

    const ready = await until('the webhook answers /readyz', 30_000, () => {
      const answer = httpsFromNode(node, `https://${pod.ip}:8443/readyz`, cert.certFile);
      return answer.status === 200 ? answer : undefined;
    });
    assert.equal(ready.status, 200);
    const review = admissionReview({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', namespace: 'demo' }, spec: { containers: [{ name: 'app', image: 'app' }] } }, 'runtime-uid-1', 'demo');
    const answer = httpsFromNode(node, `https://${pod.ip}:8443/inject`, cert.certFile, JSON.stringify(review));
    assert.equal(answer.status, 200, JSON.stringify(answer));
    const response = responseOf(answer.body!);
    assert.equal(response.uid, 'runtime-uid-1');
    assert.equal(response.allowed, true);
    const patch = patchOf(response);
    assert.ok(JSON.stringify(patch).includes('istio-init'), 'the patch adds istio-init');

    const status = await node.cri.containerStatus(id);
    assert.equal(status.state, 'CONTAINER_RUNNING');
    // As the Deployment says: its user and group, no capabilities, a read-only root.
    const [pid] = node.containerPids(id);
    assert.ok(pid, 'the webhook container has a process');
    const procStatus = readFileSync(`/proc/${pid}/status`, 'utf8');
    assert.match(procStatus, /^Uid:\s+65532\s+65532\s+65532\s+65532$/m);
    assert.match(procStatus, /^Gid:\s+65532\s+65532\s+65532\s+65532$/m);
    assert.match(procStatus, /^CapEff:\s+0+$/m);
    assert.match(procStatus, /^NoNewPrivs:\s+1$/m);
    const rootMount = readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n').find((line) => line.split(' ')[4] === '/');
    assert.match(rootMount ?? '', /^\S+ \S+ \S+ \S+ \/ (ro|ro,\S*) /, `root is not read-only: ${rootMount}`);
    await node.cri.stopContainer(id, 10);
    const stopped = await node.cri.waitForExit(id, 20_000);
    assert.equal(stopped.exit_code, 0, pod.log(config));
    assert.doesNotMatch(pod.log(config), STACK_TRACE);
    await pod.remove();
  });

  it('the CNI agent as deploy/cni.yaml runs it (root, read-only root, drop ALL) puts the image\'s meshcap on the node as meshcap-cni, chained last, and it answers there with no Node.js', async () => {
    const template = templateOf('cni.yaml', 'DaemonSet');
    const container = template.spec.containers.find((c) => c.name === 'agent')!;
    assert.equal(container.image, MESHCAP_IMAGE);
    assert.equal(container.securityContext?.readOnlyRootFilesystem, true);
    // The node's directories, each a host path of the DaemonSet made under this node's own directory.
    const hostDir = (name: string) => {
      const dir = join(node.dir, 'cni-host', name);
      mkdirSync(dir, { recursive: true });
      return dir;
    };
    const confDir = hostDir('etc-cni-net.d');
    const binDir = hostDir('opt-cni-bin');
    const lock = join(hostDir('run'), 'xtables.lock');
    writeFileSync(lock, '');
    writeFileSync(join(confDir, '10-pods.conf'), JSON.stringify({ cniVersion: '1.0.0', name: 'pods', type: 'bridge', bridge: 'cni-test0', ipam: { type: 'host-local', subnet: '198.18.200.0/24' } }));
    const hostPaths: Record<string, string> = { 'cni-bin': binDir, 'cni-conf': confDir, 'cri-socket': node.socket, netns: hostDir('netns'), 'xtables-lock': lock, run: hostDir('var-run-meshcap-cni') };
    const volumes = (template.spec.volumes ?? []).map((v) => (v.hostPath && hostPaths[v.name] ? { ...v, hostPath: { ...v.hostPath, path: hostPaths[v.name]! } } : v));
    const pod = await node.runSandbox({ name: 'meshcap-cni-node', namespace: 'meshcap-system', labels: template.metadata.labels, annotations: { 'meshcap.io/cni-agent': 'true' } });
    const config = kubeletContainer(container, pod, { podSecurityContext: template.spec.securityContext, volumes });
    const id = await pod.start(config);
    const conflist = join(confDir, '10-pods.conflist');
    const chained = await until('the agent chains meshcap-cni', 60_000, () => {
      if (!existsSync(conflist) || !existsSync(join(binDir, 'meshcap-cni'))) return undefined;
      const plugins = (JSON.parse(readFileSync(conflist, 'utf8')) as { plugins: { type: string }[] }).plugins.map((p) => p.type);
      return plugins.at(-1) === 'meshcap-cni' ? plugins : undefined;
    });
    assert.deepEqual(chained, ['bridge', 'meshcap-cni'], pod.log(config));
    assert.deepEqual(readdirSync(confDir), ['10-pods.conflist'], 'the .conf became a .conflist');
    // The plugin is the image's meshcap itself, run by the runtime on the node: no node, no PATH.
    const plugin = join(binDir, 'meshcap-cni');
    const version = spawnSync(plugin, [], { env: { CNI_COMMAND: 'VERSION' }, input: '{"cniVersion":"1.0.0"}', encoding: 'utf8' });
    assert.equal(version.status, 0, version.stderr);
    assert.deepEqual(JSON.parse(version.stdout).supportedVersions, ['0.3.1', '0.4.0', '1.0.0', '1.1.0']);
    const inImage = await pod.run(pod.container({ name: 'no-node', image: MESHCAP_IMAGE, command: ['/bin/sh', '-c', 'command -v node || echo "no node"; sha256sum /opt/meshcap/meshcap'] }));
    assert.match(inImage.log, /^no node$/m, 'the image carries one copy of node: the single executable');
    const imageHash = inImage.log.match(/^([0-9a-f]{64}) /m)?.[1];
    const installed = spawnSync('sha256sum', [plugin], { encoding: 'utf8' }).stdout.split(' ')[0];
    assert.equal(installed, imageHash, 'meshcap-cni is the image\'s /opt/meshcap/meshcap');
    await node.cri.stopContainer(id, 10);
    await node.cri.waitForExit(id, 20_000);
    assert.doesNotMatch(pod.log(config), STACK_TRACE);
    // SIGTERM leaves plugin and entry in place (an upgrade never opens a window).
    assert.ok(existsSync(plugin));
    assert.equal((JSON.parse(readFileSync(conflist, 'utf8')) as { plugins: { type: string }[] }).plugins.at(-1)?.type, 'meshcap-cni');
    await pod.remove();
  });

  describe('node-prep (deploy/node-prep.yaml) on a kernel with netfilter built in and no /lib/modules', () => {
    const template = templateOf('node-prep.yaml', 'DaemonSet');
    const init = (template.spec.initContainers ?? []).find((c) => c.image === MESHCAP_IMAGE)!;
    // Never load a module into this machine's kernel from a test: grant SYS_MODULE only where the kernel
    // cannot load modules at all (no CONFIG_MODULES: no /proc/modules), as on the machine this was made on.
    const canLoad = existsSync('/proc/modules');
    const security: K8sSecurityContext = canLoad
      ? { ...init.securityContext, capabilities: { ...init.securityContext?.capabilities, add: (init.securityContext?.capabilities?.add ?? []).filter((c) => c !== 'SYS_MODULE') } }
      : init.securityContext!;
    /** The DaemonSet's volumes with /lib/modules pointing at a path that does not exist, as on such a node. */
    const noModules = (): K8sVolume[] =>
      (template.spec.volumes ?? []).map((v) => (v.hostPath?.path === '/lib/modules' ? { ...v, hostPath: { ...v.hostPath, path: join(node.dir, `no-lib-modules-${Math.random().toString(36).slice(2)}`) } } : v));

    async function runPrep(modules?: string) {
      const pod = await node.runSandbox({ name: 'meshcap-node-prep', namespace: 'meshcap-system', labels: template.metadata.labels });
      const env = (init.env ?? []).map((e) => (modules !== undefined && e.name === 'MESHCAP_MODULES' ? { name: e.name, value: modules } : e));
      const run = await pod.run(kubeletContainer({ ...init, env, securityContext: security }, pod, { volumes: noModules() }));
      await pod.remove();
      return run;
    }

    it('the DaemonSet can start there: the kubelet accepts its /lib/modules hostPath', async () => {
      const pod = await node.runSandbox({ name: 'meshcap-node-prep-start', namespace: 'meshcap-system' });
      try {
        assert.doesNotThrow(() => kubeletContainer({ ...init, securityContext: security }, pod, { volumes: noModules() }));
      } finally {
        await pod.remove();
      }
    });

    it('its script succeeds with the DaemonSet\'s modules (all built in)', { skip: existsSync('/lib/modules') ? 'this machine has /lib/modules' : false }, async () => {
      const run = await runPrep();
      assert.equal(run.exitCode, 0, run.log);
      assert.doesNotMatch(run.log, /FATAL/);
    });

    for (const [where, list] of [
      ['first', 'meshcap_no_such_module xt_owner xt_comment'],
      ['in the middle', 'xt_owner meshcap_no_such_module xt_comment'],
      ['last', 'xt_owner xt_comment meshcap_no_such_module'],
    ] as const) {
      it(`a module that cannot be loaded fails the container (${where} in the list)`, async () => {
        const run = await runPrep(list);
        assert.notEqual(run.exitCode, 0, run.log);
        assert.match(run.log, /meshcap_no_such_module/);
      });
    }
  });
});

