/** meshcap-cni's pure parts: CNI_ARGS, versions, results, requests, the decision table, the derivation shared with the injector. */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { FightDetector } from '../../src/cni/agent.js';
import { captureArgs, decide, skipWithoutPod } from '../../src/cni/decide.js';
import { DEFAULT_PLUGIN_SETTINGS, parseRequest } from '../../src/cni/request.js';
import { CniError, convertResult, minimalResult, parseCniArgs } from '../../src/cni/spec.js';
import { injectManifests } from '../../src/inject/manifest.js';
import { DEFAULT_SETTINGS } from '../../src/inject/settings.js';
import { INJECT_CASES } from '../golden/inject-cases.js';
import { podsOf, INJECT_DIR } from '../golden/inject-compare.js';
import { podManifest } from '../helpers/manifests.js';
import { anchorsOrSkip } from '../helpers/paths.js';

const POD = { namespace: 'default', name: 'hello', uid: 'u1', infraContainerId: 'c1' };
const STATUS = (init: string[], containers: string[] | null) => JSON.stringify({ initContainers: init, containers, volumes: null, imagePullSecrets: null, revision: 'default' });
const baseEnv = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_NETNS: '/run/netns/x', CNI_IFNAME: 'eth0', CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=hello;K8S_POD_UID=u1' };
const conf = (extra: Record<string, unknown> = {}) => JSON.stringify({ cniVersion: '1.0.0', name: 'net', type: 'meshcap-cni', ...extra });
const codeOf = (fn: () => unknown): number => {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof CniError, String(error));
    return error.code;
  }
  assert.fail('no error');
};

describe('CNI protocol', () => {
  test('CNI_ARGS are parsed by key, whatever the order (containerd builds them from a Go map)', () => {
    const a = parseCniArgs('K8S_POD_UID=u;IgnoreUnknown=1;K8S_POD_NAME=p;K8S_POD_NAMESPACE=n');
    const b = parseCniArgs('IgnoreUnknown=1;K8S_POD_NAMESPACE=n;K8S_POD_NAME=p;K8S_POD_UID=u');
    assert.deepEqual([...a.values.entries()].sort(), [...b.values.entries()].sort());
    assert.equal(a.ignoreUnknown, true);
    assert.equal(parseCniArgs('K8S_POD_NAME=p').ignoreUnknown, false);
  });

  test('results keep their content across versions; IP versions appear below 1.0.0 only', () => {
    const prev = { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', sandbox: '/x' }], ips: [{ interface: 0, address: '198.18.0.2/24' }, { address: '2001:db8::2/64' }], routes: [{ dst: '0.0.0.0/0' }], dns: {} };
    const old = convertResult(prev, '0.4.0');
    assert.deepEqual((old.ips as any[]).map((ip) => ip.version), ['4', '6']);
    assert.deepEqual(old.routes, prev.routes);
    assert.deepEqual(convertResult(old, '1.0.0'), prev);
    assert.deepEqual(minimalResult('0.3.1'), { cniVersion: '0.3.1', interfaces: [], ips: [], dns: {} });
  });

  test('error codes: bad JSON 6, missing env 4, unsupported version 1, CHECK below 0.4.0 1, unknown CNI_ARGS without IgnoreUnknown 4', () => {
    assert.equal(codeOf(() => parseRequest(baseEnv, '{nope')), 6);
    assert.equal(codeOf(() => parseRequest({ ...baseEnv, CNI_NETNS: '' }, conf())), 4);
    assert.equal(codeOf(() => parseRequest({ ...baseEnv, CNI_COMMAND: 'FROB' }, conf())), 4);
    assert.equal(codeOf(() => parseRequest(baseEnv, conf({ cniVersion: '9.9.9' }))), 1);
    assert.equal(codeOf(() => parseRequest({ ...baseEnv, CNI_COMMAND: 'CHECK' }, conf({ cniVersion: '0.3.1' }))), 1);
    assert.equal(codeOf(() => parseRequest({ ...baseEnv, CNI_ARGS: 'K8S_POD_NAME=p;K8S_POD_NAMESPACE=n;FOO=1' }, conf())), 4);
    assert.equal(parseRequest({ ...baseEnv, CNI_ARGS: 'K8S_POD_NAME=p;K8S_POD_NAMESPACE=n;FOO=1;IgnoreUnknown=1' }, conf()).pod?.name, 'p');
    assert.equal(codeOf(() => parseRequest(baseEnv, conf({ apiTimeoutSeconds: 'soon' }))), 7);
  });

  test('plugin fields come from its own entry; an unknown field is a warning, not an error', () => {
    const request = parseRequest(baseEnv, conf({ stateDir: '/tmp/s', excludeNamespaces: ['a'], futureKnob: 1 }));
    assert.equal(request.settings.stateDir, '/tmp/s');
    assert.deepEqual(request.settings.excludeNamespaces, ['a']);
    assert.match(request.warnings.join('\n'), /unknown field "futureKnob"/);
  });

  test('annotations come from runtimeConfig only when the runtime sent them', () => {
    assert.equal(parseRequest(baseEnv, conf()).annotations, undefined);
    const request = parseRequest(baseEnv, conf({ runtimeConfig: { 'io.kubernetes.cri.pod-annotations': { a: 'b' } } }));
    assert.deepEqual(request.annotations, { a: 'b' });
  });
});

describe('CNI decision table', () => {
  const injected = { 'sidecar.istio.io/status': STATUS(['istio-validation'], ['istio-proxy']) };
  const skips: [string, Record<string, string>, RegExp][] = [
    ['no status annotation', {}, /not injected/],
    ['inject=false', { ...injected, 'sidecar.istio.io/inject': 'false' }, /inject=false/],
    ['pod with its own istio-init', { 'sidecar.istio.io/status': STATUS(['istio-init'], ['istio-proxy']) }, /captures itself with its istio-init/],
    ['no istio-proxy', { 'sidecar.istio.io/status': STATUS(['istio-validation'], ['other']) }, /no istio-proxy/],
    ['interception NONE', { ...injected, 'sidecar.istio.io/interceptionMode': 'NONE' }, /NONE/],
    ['the agent pod', { 'meshcap.io/cni-agent': 'true' }, /agent/],
    ['DISABLE_ENVOY', { ...injected, 'proxy.istio.io/config': 'proxyMetadata:\n  DISABLE_ENVOY: "true"\n' }, /DISABLE_ENVOY/],
  ];
  for (const [name, annotations, reason] of skips) {
    test(`skipped: ${name}`, () => {
      const decision = decide(annotations, POD);
      assert.equal(decision.kind, 'skip');
      assert.match((decision as { reason: string }).reason, reason);
    });
  }

  test('skipped before any annotation is read: no Kubernetes pod args, an excluded namespace', () => {
    assert.match((skipWithoutPod(undefined, DEFAULT_PLUGIN_SETTINGS) as { reason: string }).reason, /not a Kubernetes pod/);
    assert.match((skipWithoutPod({ ...POD, namespace: 'kube-system' }, DEFAULT_PLUGIN_SETTINGS) as { reason: string }).reason, /kube-system is excluded/);
    assert.equal(skipWithoutPod(POD, DEFAULT_PLUGIN_SETTINGS), undefined);
  });

  test('captured: istio-proxy in containers, or in initContainers as a native sidecar', () => {
    assert.equal(decide(injected, POD).kind, 'capture');
    assert.equal(decide({ 'sidecar.istio.io/status': STATUS(['istio-validation', 'istio-proxy'], null) }, POD).kind, 'capture');
  });

  test('an invalid capture annotation is code 7, naming the annotation and the value', () => {
    const error = (() => {
      try {
        decide({ ...injected, 'traffic.sidecar.istio.io/excludeOutboundPorts': '70000' }, POD);
      } catch (e) {
        return e as CniError;
      }
      return undefined;
    })();
    assert.ok(error instanceof CniError);
    assert.equal(error.code, 7);
    assert.match(error.message, /traffic\.sidecar\.istio\.io\/excludeOutboundPorts/);
    assert.match(error.message, /70000/);
  });

  test("one derivation: the plugin's arguments are the istio-init arguments meshcap inject writes for the same pod", () => {
    const annotations = {
      'traffic.sidecar.istio.io/excludeOutboundPorts': '5432,6379',
      'traffic.sidecar.istio.io/excludeOutboundIPRanges': '198.19.0.0/16',
      'traffic.sidecar.istio.io/excludeInboundPorts': '9000',
      'traffic.sidecar.istio.io/includeOutboundPorts': '',
    };
    const result = injectManifests(podManifest(annotations), DEFAULT_SETTINGS);
    const pod = podsOf(result.text)[0]!;
    const init = (pod.spec.initContainers as any[]).find((c) => c.name === 'istio-init');
    const injectedAnnotations = pod.metadata.annotations as Record<string, string>;
    assert.deepEqual(captureArgs(injectedAnnotations, 'pod default/p'), init.args.slice(init.args[0] === 'istio-iptables' ? 1 : 0));
  });

  test("Istio's own CNI injection (hello.yaml.cni.injected): the plugin derives istio-validation's capture arguments", (t) => {
    const anchors = anchorsOrSkip();
    if (!anchors.available) return t.skip(anchors.reason);
    const pod = podsOf(readFileSync(join(INJECT_DIR, 'hello.yaml.cni.injected'), 'utf8'))[0]!;
    const validation = (pod.spec.initContainers as any[]).find((c) => c.name === 'istio-validation');
    const decision = decide(pod.metadata.annotations as Record<string, string>, POD);
    assert.equal(decision.kind, 'capture');
    const expected = (validation.args as string[]).slice(1).filter((a) => a !== '--run-validation' && a !== '--skip-rule-apply');
    assert.deepEqual((decision as { args: readonly string[] }).args, expected);
  });

  test("every Istio anchor's istio-init arguments are derived from its annotations alone", (t) => {
    const anchors = anchorsOrSkip();
    if (!anchors.available) return t.skip(anchors.reason);
    let compared = 0;
    // Install-level settings (Istio's mesh config, e.g. TPROXY for hello-tproxy) are not annotations; in CNI
    // layout the injector writes them as annotations (as Istio's CNI template does). Compare the default-install cases.
    const installLevel = new Set(INJECT_CASES.filter((c) => c.settings && Object.keys(c.settings).some((k) => k !== 'nativeSidecars')).map((c) => c.golden));
    for (const file of readdirSync(INJECT_DIR).filter((f) => f.endsWith('.injected') && !installLevel.has(f))) {
      for (const pod of podsOf(readFileSync(join(INJECT_DIR, file), 'utf8'))) {
        const init = ((pod.spec.initContainers ?? []) as any[]).find((c) => c.name === 'istio-init');
        const annotations = (pod.metadata.annotations ?? {}) as Record<string, string>;
        if (!init || !annotations['sidecar.istio.io/status']) continue;
        // The uid comes from the proxy's securityContext, which is not an annotation: compare where it is the default.
        if (init.args[init.args.indexOf('-u') + 1] !== '1337') continue;
        const args = captureArgs(annotations, file);
        assert.deepEqual(args, (init.args as string[]).slice(1), file);
        compared++;
      }
    }
    assert.ok(compared >= 10, `compared ${compared} anchors`);
  });
});

test('config fight: the threshold-th re-insertion within the window raises it, once', () => {
  const fight = new FightDetector(3, 60_000);
  assert.equal(fight.record(0), false);
  assert.equal(fight.record(1000), false);
  assert.equal(fight.record(2000), true);
  assert.equal(fight.record(3000), false);
  const slow = new FightDetector(3, 60_000);
  assert.deepEqual([0, 40_000, 80_000, 120_000].map((t) => slow.record(t)), [false, false, false, false]);
});
