/**
 * `meshcap cni agent` with its audit loop, as a process, on a real containerd
 * node with the real meshcap-cni plugin: the startup race (a sandbox created
 * before the plugin's config entry existed) is found and repaired in place,
 * and the istio-validation container already waiting in that sandbox then
 * succeeds, with no restart; a pod started after the entry exists is captured
 * by the plugin and audits ok; /metrics shows both.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import YAML from 'yaml';
import { ensurePlugin } from '../helpers/cni-node.js';
import { podManifest } from '../helpers/manifests.js';
import { runAsync } from '../helpers/netns.js';
import { MESHCAP_BIN } from '../helpers/paths.js';
import { RuntimeNode, runtimeSkip } from './harness.js';
import { startNodeWithImage } from './fixtures.js';
import { httpGet } from '../helpers/http.js';
import { until } from '../helpers/poll.js';
import { type K8sContainer, kubeletContainer } from './kubelet.js';

const skip = runtimeSkip();


/** `meshcap inject --cni` on a one-container pod: its annotations and its istio-validation container. */
async function injectedCni(): Promise<{ annotations: Record<string, string>; validation: K8sContainer }> {
  const result = await runAsync(process.execPath, [MESHCAP_BIN, 'inject', '--cni', '-f', '-'], { input: podManifest({}) });
  assert.equal(result.code, 0, result.stderr);
  const pod = YAML.parse(result.stdout) as { metadata: { annotations: Record<string, string> }; spec: { initContainers: K8sContainer[] } };
  const validation = pod.spec.initContainers.find((c) => c.name === 'istio-validation');
  assert.ok(validation);
  return { annotations: pod.metadata.annotations, validation };
}

describe('meshcap cni agent: audit and repair on a containerd node', { skip }, () => {
  let node: RuntimeNode;
  let agent: ChildProcess | undefined;
  let logs = '';

  before(async () => {
    node = await startNodeWithImage('race');
  });
  after(async () => {
    if (agent && agent.exitCode === null) {
      agent.kill('SIGTERM');
      await new Promise((resolve) => agent!.once('exit', resolve));
    }
    await node?.stop();
  });

  test('startup race: repaired in place by the agent; the waiting validation container succeeds with no restart', async (t: TestContext) => {
    const plugin = ensurePlugin();
    const confDir = join(node.dir, 'cni-conf');
    const binDir = join(node.dir, 'cni-bin');
    const conflist = () => readdirSync(confDir).map((f) => readFileSync(join(confDir, f), 'utf8')).join('\n');
    assert.doesNotMatch(conflist(), /meshcap-cni/, 'no meshcap-cni entry yet');

    // The pod is scheduled before the node is ready: its sandbox gets the primary network only.
    const { annotations, validation } = await injectedCni();
    const race = await node.runSandbox({ name: 'race', namespace: 'shop', annotations });
    assert.doesNotMatch(race.exec('iptables-nft-save', []).stdout, /ISTIO_/, 'the sandbox has no capture');

    // istio-validation as injected (meshcap's image, uid 1337, no capabilities), run by the runtime.
    // A 60 s probe timeout instead of 5 s, so a loaded CI machine cannot make this a race of its own.
    const spec: K8sContainer = { ...validation, args: [...(validation.args ?? []), '--probe-timeout=60s'] };
    const config = kubeletContainer(spec, race);
    const validationId = await race.start(config);
    const waiting = await node.cri.containerStatus(validationId);
    assert.equal(waiting.state, 'CONTAINER_RUNNING', 'validation waits for the capture');

    const started = Date.now();
    agent = spawn(process.execPath, [MESHCAP_BIN, 'cni', 'agent', '--cni-conf-dir', confDir, '--cni-bin-dir', binDir, '--cri-socket', node.socket, '--metrics-addr', '127.0.0.1:0', '--audit-interval', '1'], {
      env: { PATH: process.env.PATH!, MESHCAP_CNI_PLUGIN: plugin, MESHCAP_CNI_RUN_DIR: join(node.dir, 'agent-run') },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    agent.stderr!.on('data', (c: Buffer) => (logs += c.toString()));
    const port = Number(await until('metrics port', 15_000, () => /serving \/readyz and \/metrics on port (\d+)/.exec(logs)?.[1], { last: () => logs }));

    const exited = await until('validation exits', 60_000, async () => {
      const status = await node.cri.containerStatus(validationId);
      return status.state === 'CONTAINER_EXITED' ? status : undefined;
    }, { last: () => logs });
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    assert.equal(exited.exit_code, 0, `${race.log(config)}\n${logs}`);
    assert.match(logs, /audit: shop\/race missing -> repaired -> ok/);
    assert.deepEqual((await node.cri.listContainers({ pod_sandbox_id: race.id })).map((c) => [c.id, c.metadata?.attempt]), [[validationId, 0]], 'the same container, never restarted');
    t.diagnostic(`agent start -> race pod repaired -> validation passed: ${seconds} s`);

    // After the entry exists, a new pod is captured by the plugin at sandbox creation and audits ok.
    const fresh = await node.runSandbox({ name: 'fresh', namespace: 'shop', annotations });
    assert.match(fresh.exec('iptables-nft-save', []).stdout, /-A OUTPUT -j ISTIO_OUTPUT/, 'meshcap-cni captured the new sandbox');
    const metrics = await until('both pods ok in /metrics', 15_000, async () => {
      const text = (await httpGet(port, '/metrics')).body;
      return /pod="fresh",state="ok"\} 1/.test(text) ? text : undefined;
    });
    assert.match(metrics, /^meshcap_pod_capture_state\{namespace="shop",pod="race",state="ok"\} 1$/m);
    assert.match(metrics, /^meshcap_capture_repairs_total\{result="ok"\} 1$/m);
    assert.match(metrics, /^meshcap_pods_by_capture_state\{state="ok"\} 2$/m);
    assert.match(metrics, /^meshcap_cni_ready 1$/m);
    assert.doesNotMatch(logs, /audit: shop\/fresh .*repaired/, 'the plugin-made capture needed no repair');
  });
});
