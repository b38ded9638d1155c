/**
 * Istio's CNI injection layout (`meshcap inject --cni`, `meshcap webhook --cni`):
 * istio-validation instead of istio-init, the capture settings in annotations,
 * and the contract with the plugin: those annotations alone give back, through
 * captureArgsFromAnnotations, exactly the args istio-init would have had.
 * Istio's own CNI goldens (hello.yaml.cni.injected, proxy-override-runas.yaml.cni.injected)
 * run in test/golden/istio-inject.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import YAML from 'yaml';
import { settingsFromOptions } from '../../src/cli/inject.js';
import { captureArgsFromAnnotations } from '../../src/inject/capture-args.js';
import type { JsonObject } from '../../src/inject/json.js';
import { injectManifests } from '../../src/inject/manifest.js';
import { DEFAULT_SETTINGS, type InjectSettings } from '../../src/inject/settings.js';
import { answerReview } from '../../src/webhook/admission.js';
import { admissionReview, applyPatch, patchOf, responseOf } from '../helpers/admission.js';
import { runCli } from '../helpers/cli.js';
import { podManifest } from '../helpers/manifests.js';

interface Container {
  name: string;
  command?: string[];
  args?: string[];
  securityContext?: Record<string, unknown>;
}
interface Pod {
  metadata: { annotations: Record<string, string>; labels: Record<string, string> };
  spec: { initContainers?: Container[]; containers: Container[] };
}

const CNI: InjectSettings = { ...DEFAULT_SETTINGS, cni: true };
const podOf = (text: string) => YAML.parse(text) as Pod;
const names = (list: Container[] | undefined) => (list ?? []).map((c) => c.name);
const find = (pod: Pod, name: string) => [...(pod.spec.initContainers ?? []), ...pod.spec.containers].find((c) => c.name === name);
const status = (pod: Pod) => JSON.parse(pod.metadata.annotations['sidecar.istio.io/status']!) as { initContainers: string[] | null; containers: string[] | null };
const VALIDATION_FLAGS = ['--run-validation', '--skip-rule-apply'];

const userProxy = (securityContext: string) => `  - name: istio-proxy\n    image: auto\n    securityContext: ${securityContext}\n`;
const userInit = '  initContainers:\n  - name: migrate\n    image: migrate\n';

describe('CNI layout: the plugin reproduces istio-init\'s args from the annotations alone', () => {
  const samples: Record<string, string>[] = [
    {},
    { 'traffic.sidecar.istio.io/includeOutboundIPRanges': '10.0.0.0/8', 'traffic.sidecar.istio.io/excludeOutboundIPRanges': '10.1.0.0/16' },
    { 'traffic.sidecar.istio.io/includeOutboundIPRanges': '' },
    { 'traffic.sidecar.istio.io/includeInboundPorts': '80,8080', 'traffic.sidecar.istio.io/excludeInboundPorts': '9090' },
    { 'traffic.sidecar.istio.io/includeOutboundPorts': '443', 'traffic.sidecar.istio.io/excludeOutboundPorts': '3306' },
    { 'istio.io/reroute-virtual-interfaces': 'net1', 'traffic.sidecar.istio.io/excludeInterfaces': 'eth1' },
    { 'status.sidecar.istio.io/port': '0' },
    { 'status.sidecar.istio.io/port': '15555', 'traffic.sidecar.istio.io/excludeInboundPorts': '15555,7070' },
    { 'sidecar.istio.io/interceptionMode': 'TPROXY' },
    { 'proxy.istio.io/config': 'interceptionMode: TPROXY', 'sidecar.istio.io/agentLogLevel': 'default:debug' },
  ];
  const installs: [string, InjectSettings][] = [
    ['defaults', DEFAULT_SETTINGS],
    ['legacy layout, other install ranges', { ...DEFAULT_SETTINGS, nativeSidecars: false, excludeIPRanges: '192.0.2.0/24', excludeOutboundPorts: '25' }],
  ];
  for (const [install, settings] of installs) {
    for (const proxy of ['', userProxy('{runAsUser: 1234, runAsGroup: 4321}')]) {
      test(`${install}${proxy ? ', user proxy uid 1234' : ''}: every sample`, () => {
        for (const annotations of samples) {
          const manifest = podManifest(annotations, proxy);
          const plain = podOf(injectManifests(manifest, settings).text);
          const cni = podOf(injectManifests(manifest, { ...settings, cni: true }).text);
          const initArgs = find(plain, 'istio-init')!.args!;
          const validation = find(cni, 'istio-validation')!;
          assert.deepEqual(validation.args, [...initArgs, ...VALIDATION_FLAGS], JSON.stringify(annotations));
          // What the plugin gets: the pod's annotations from the runtime and the install settings; no containers.
          assert.deepEqual(captureArgsFromAnnotations(cni.metadata.annotations, { settings }), initArgs, JSON.stringify(annotations));
          assert.equal(find(cni, 'istio-init'), undefined);
        }
      });
    }
  }

  test('interceptionMode NONE: no init container at all, and the plugin is told to skip', () => {
    const pod = podOf(injectManifests(podManifest({ 'sidecar.istio.io/interceptionMode': 'NONE' }), CNI).text);
    assert.deepEqual(names(pod.spec.initContainers), ['istio-proxy']);
    assert.equal(pod.metadata.annotations['sidecar.istio.io/interceptionMode'], 'NONE');
    assert.equal(captureArgsFromAnnotations(pod.metadata.annotations), undefined);
  });
});

describe('CNI layout: containers and status as Istio lays them out', () => {
  test('native: istio-validation, istio-proxy, then the user\'s init containers; status lists both as init containers', () => {
    const pod = podOf(injectManifests(podManifest({}, userInit), CNI).text);
    assert.deepEqual(names(pod.spec.initContainers), ['istio-validation', 'istio-proxy', 'migrate']);
    assert.deepEqual(names(pod.spec.containers), ['app']);
    assert.deepEqual([status(pod).initContainers, status(pod).containers], [['istio-validation', 'istio-proxy'], null]);
  });

  test('legacy: istio-validation first (the rules exist before any init container), the proxy a container', () => {
    const pod = podOf(injectManifests(podManifest({}, userInit), { ...CNI, nativeSidecars: false }).text);
    assert.deepEqual(names(pod.spec.initContainers), ['istio-validation', 'migrate']);
    assert.deepEqual(names(pod.spec.containers), ['istio-proxy', 'app'], 'held: proxy first');
    assert.deepEqual([status(pod).initContainers, status(pod).containers], [['istio-validation'], ['istio-proxy']]);
  });

  test('istio-validation: the meshcap image running the validation, as the proxy user, nothing added', () => {
    const validation = find(podOf(injectManifests(podManifest(), CNI).text), 'istio-validation')!;
    assert.deepEqual(validation.command, ['meshcap']);
    assert.equal(validation.args![0], 'istio-iptables');
    assert.deepEqual(validation.args!.slice(-2), VALIDATION_FLAGS);
    assert.deepEqual(validation.securityContext, {
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      privileged: false,
      readOnlyRootFilesystem: true,
      runAsGroup: 1337,
      runAsNonRoot: true,
      runAsUser: 1337,
    });
  });

  test('a user proxy uid: the validation follows it outside TPROXY, stays 1337 under TPROXY, never root', () => {
    const sc = (annotations: Record<string, string>, proxy: string) =>
      find(podOf(injectManifests(podManifest(annotations, userProxy(proxy)), CNI).text), 'istio-validation')!.securityContext!;
    assert.deepEqual([sc({}, '{runAsUser: 1234, runAsGroup: 4321}').runAsUser, sc({}, '{runAsUser: 1234, runAsGroup: 4321}').runAsGroup], [1234, 4321]);
    const tproxy = sc({ 'sidecar.istio.io/interceptionMode': 'TPROXY' }, '{runAsUser: 1234}');
    assert.deepEqual([tproxy.runAsUser, tproxy.runAsGroup], [1337, 1337]);
    assert.equal(sc({}, '{runAsUser: 0}').runAsUser, 1337);
  });

  test('the user proxy uid reaches the plugin through meshcap.io/proxy-uid', () => {
    const pod = podOf(injectManifests(podManifest({}, userProxy('{runAsUser: 1234}')), CNI).text);
    assert.equal(pod.metadata.annotations['meshcap.io/proxy-uid'], '1234');
    assert.equal(podOf(injectManifests(podManifest(), CNI).text).metadata.annotations['meshcap.io/proxy-uid'], undefined);
  });

  test('re-injection changes nothing; switching the layout either way leaves no container of the other', () => {
    const cni = injectManifests(podManifest({}, userInit), CNI).text;
    assert.equal(injectManifests(cni, CNI).text, cni);
    const plain = podOf(injectManifests(cni, DEFAULT_SETTINGS).text);
    assert.deepEqual(names(plain.spec.initContainers), ['istio-init', 'istio-proxy', 'migrate']);
    const back = podOf(injectManifests(injectManifests(podManifest({}, userInit), DEFAULT_SETTINGS).text, CNI).text);
    assert.deepEqual(names(back.spec.initContainers), ['istio-validation', 'istio-proxy', 'migrate']);
  });

  test("a user's istio-init in the CNI layout (or istio-validation without it) is refused, naming it, not dropped", () => {
    const own = (name: string) => podManifest({}, `  initContainers:\n  - name: ${name}\n    image: auto\n    args: [custom]\n`);
    assert.throws(() => injectManifests(own('istio-init'), CNI), /container istio-init .* has no place in the CNI layout/);
    assert.throws(() => injectManifests(own('istio-validation'), DEFAULT_SETTINGS), /container istio-validation .* exists only in the CNI layout/);
    const validation = find(podOf(injectManifests(own('istio-validation'), CNI).text), 'istio-validation')!;
    assert.deepEqual(validation.args, ['custom'], "the user's own fields are laid over istio-validation, as Istio does");
  });

  test('a gateway gets no capture annotations: it has no capture', () => {
    const pod = podOf(injectManifests(podManifest({ 'inject.istio.io/templates': 'gateway' }), CNI).text);
    assert.equal(pod.metadata.annotations['traffic.sidecar.istio.io/includeInboundPorts'], undefined);
    assert.equal(pod.spec.initContainers, undefined);
  });
});

describe('CNI layout from the CLI and the webhook', () => {
  test('meshcap inject --cni and the shared --cni option of the webhook', () => {
    const cli = runCli(['inject', '--cni', '-f', '-'], { input: podManifest() });
    assert.equal(cli.code, 0, cli.stderr);
    assert.deepEqual(names(podOf(cli.stdout).spec.initContainers), ['istio-validation', 'istio-proxy']);
    assert.equal(settingsFromOptions({ cni: true }).cni, true);
    assert.equal(settingsFromOptions({}).cni, false);
  });

  test('the webhook with --cni settings patches in istio-validation and the annotations', () => {
    const pod = YAML.parse(podManifest()) as JsonObject;
    const response = responseOf(answerReview(JSON.stringify(admissionReview(pod)), settingsFromOptions({ cni: true })).body);
    const patched = applyPatch(pod, patchOf(response)) as unknown as Pod;
    assert.deepEqual(names(patched.spec.initContainers), ['istio-validation', 'istio-proxy']);
    assert.equal(patched.metadata.annotations['traffic.sidecar.istio.io/excludeInboundPorts'], '15020');
    assert.deepEqual(captureArgsFromAnnotations(patched.metadata.annotations), find(podOf(injectManifests(podManifest(), DEFAULT_SETTINGS).text), 'istio-init')!.args);
  });

  test('--network NAME: the topology.istio.io/network label (and ISTIO_META_NETWORK)', () => {
    const pod = podOf(injectManifests(podManifest(), settingsFromOptions({ network: 'net-east' })).text);
    assert.equal(pod.metadata.labels['topology.istio.io/network'], 'net-east');
    assert.match(JSON.stringify(find(pod, 'istio-proxy')), /"name":"ISTIO_META_NETWORK","value":"net-east"/);
  });
});
