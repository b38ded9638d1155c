/**
 * The validation init container of CNI mode, for real: run unprivileged (no
 * capabilities, as the proxy uid like Istio's istio-validation, or as an app
 * uid) in a pod netns whose capture meshcap-cni did, or did not, install.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import YAML from 'yaml';
import { diagnose } from '../../src/doctor/classify.js';
import { CniNode, cniSkipReason, INJECTED } from '../helpers/cni-node.js';
import { runAsync } from '../helpers/netns.js';
import { MESHCAP_BIN, ANCHORS_DIR, anchorsOrSkip } from '../helpers/paths.js';

const skip = cniSkipReason();
const ISTIO_LINE = 'iptables validation failed; workload is not ready for Istio.';
const DEFAULT_ARGS = ['istio-iptables', '-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '', '-b', '*', '-d', '15090,15021,15020', '--run-validation', '--skip-rule-apply'];

/** istio-validation's args from Istio's own CNI injection when the anchors are there; the same shape otherwise. */
function istioValidationArgs(): string[] {
  if (!anchorsOrSkip().available) return DEFAULT_ARGS;
  const doc = YAML.parseAllDocuments(readFileSync(join(ANCHORS_DIR, 'istio-inject', 'hello.yaml.cni.injected'), 'utf8'))[0]!.toJS();
  const args = doc.spec.template.spec.initContainers.find((c: { name: string }) => c.name === 'istio-validation').args as string[];
  assert.deepEqual(args.slice(-2), ['--run-validation', '--skip-rule-apply']);
  return args;
}

/** As the container runs: a non-root uid, no capabilities at all, in the pod's netns. */
function validate(netns: string, uid: number, args: readonly string[]) {
  return runAsync('nsenter', [`--net=${netns}`, '--', 'setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', process.execPath, MESHCAP_BIN, ...args]);
}

describe('validation container (istio-validation / meshcap validate)', { skip }, () => {
  let node: CniNode;
  before(() => {
    node = new CniNode('valid');
    node.writePrimary();
  });
  after(() => node?.destroy());

  test('startup race: a sandbox created before the entry existed is detected: exit 126, Istio\'s line first', async () => {
    // No `cni install` yet: the runtime builds the pod network without meshcap-cni.
    const pod = node.newPod(INJECTED);
    assert.ok((await node.add(pod)).ok);
    const started = Date.now();
    const result = await validate(pod.netns, 1337, [...istioValidationArgs(), '--probe-timeout=2s']);
    assert.equal(result.code, 126, result.stderr);
    assert.equal(result.stderr.split('\n')[0], ISTIO_LINE);
    assert.match(result.stderr, /sandbox was most likely created before meshcap-cni/);
    // Istio's repair controller matches the exit code; meshcap doctor the text.
    assert.ok(['validation-failed', 'cni-not-applied'].includes(diagnose(result.stderr).causes[0]!.id), diagnose(result.stderr).causes[0]!.id);
    assert.ok(Date.now() - started >= 2000, 'it waited for the timeout before failing');
    // The same pod as an app uid, through `meshcap validate`: the outbound path is missing too.
    const app = await validate(pod.netns, 65534, ['validate', '-i', '*', '-b', '*', '--probe-timeout=1s']);
    assert.equal(app.code, 126);
    assert.equal(app.stderr.split('\n')[0], ISTIO_LINE);
    node.removePod(pod);
  });

  test('captured by meshcap-cni: exit 0 as the proxy uid (inbound probe) and as an app uid (outbound probe)', async () => {
    assert.equal(node.install().code, 0);
    const pod = node.newPod(INJECTED);
    assert.ok((await node.add(pod)).ok);
    const proxy = await validate(pod.netns, 1337, istioValidationArgs());
    assert.equal(proxy.code, 0, proxy.stderr);
    assert.match(proxy.stderr, /inbound capture port 15006/);
    const app = await validate(pod.netns, 65534, ['validate', '-i', '*', '-b', '*']);
    assert.equal(app.code, 0, app.stderr);
    assert.match(app.stderr, /outbound port 15001/);
    node.removePod(pod);
  });

  test('it waits: capture installed while it polls (a repair) lets it pass', async () => {
    node.uninstall();
    const pod = node.newPod(INJECTED);
    const add = await node.add(pod);
    assert.ok(add.ok);
    const waiting = validate(pod.netns, 1337, [...istioValidationArgs(), '--probe-timeout=30s']);
    // The repair: meshcap-cni's ADD run again for this sandbox once the node has it.
    assert.equal(node.install().code, 0);
    const repair = await node.exec('meshcap-cni', { PATH: node.hostPath, CNI_COMMAND: 'ADD', CNI_CONTAINERID: pod.containerId, CNI_NETNS: pod.netns, CNI_IFNAME: 'eth0', CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=late' },
      JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'meshcap-cni', runtimeConfig: { 'io.kubernetes.cri.pod-annotations': INJECTED }, prevResult: add.result }));
    assert.equal(repair.code, 0, repair.stdout);
    const result = await waiting;
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /validation passed after \d+ attempts/);
    node.removePod(pod);
  });
});
