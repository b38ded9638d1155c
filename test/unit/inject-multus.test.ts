/**
 * Scope item 33, the injector side of Multus: `--cni-network-attachment`
 * adds the NetworkAttachmentDefinition that runs meshcap-cni to the pod's
 * k8s.v1.cni.cncf.io/networks, keeping what the pod lists (either of
 * Multus's forms), never twice; through `meshcap inject` and the webhook.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import YAML from 'yaml';
import { settingsFromOptions } from '../../src/cli/inject.js';
import type { JsonObject } from '../../src/inject/json.js';
import { injectManifests } from '../../src/inject/manifest.js';
import { NETWORKS_ANNOTATION, parseAttachmentRef, withNetworkAttachment } from '../../src/inject/multus.js';
import { DEFAULT_SETTINGS, type InjectSettings } from '../../src/inject/settings.js';
import { answerReview } from '../../src/webhook/admission.js';
import { admissionReview, applyPatch, patchOf, responseOf } from '../helpers/admission.js';
import { runCli } from '../helpers/cli.js';
import { podManifest } from '../helpers/manifests.js';

const REF = parseAttachmentRef('default/meshcap-cni');
const MULTUS: InjectSettings = { ...DEFAULT_SETTINGS, cni: true, cniNetworkAttachment: REF };
const networksOf = (text: string) => (YAML.parse(text) as { metadata: { annotations: Record<string, string> } }).metadata.annotations[NETWORKS_ANNOTATION];
const add = (existing: string | undefined, podNamespace = 'shop') => withNetworkAttachment(existing, REF, podNamespace, 'Pod "shop/cart"');

describe('--cni-network-attachment values', () => {
  test('[namespace/]name, lower-case DNS names', () => {
    assert.deepEqual(parseAttachmentRef('default/meshcap-cni'), { namespace: 'default', name: 'meshcap-cni' });
    assert.deepEqual(parseAttachmentRef('meshcap-cni'), { namespace: undefined, name: 'meshcap-cni' });
    assert.deepEqual(parseAttachmentRef('kube-system/meshcap.cni'), { namespace: 'kube-system', name: 'meshcap.cni' });
    for (const bad of ['', 'Default/meshcap', 'a/b/c', '/meshcap', 'default/', 'default/mesh cap', 'ns.with.dots/x']) {
      assert.throws(() => parseAttachmentRef(bad), /is not a NetworkAttachmentDefinition reference/, bad);
    }
  });
});

describe('k8s.v1.cni.cncf.io/networks', () => {
  test('absent or empty: the reference alone', () => {
    assert.equal(add(undefined), 'default/meshcap-cni');
    assert.equal(add('  '), 'default/meshcap-cni');
  });

  test('a comma-separated list keeps its entries as written and gets the reference last', () => {
    assert.equal(add('macvlan-conf'), 'macvlan-conf,default/meshcap-cni');
    assert.equal(add('macvlan-conf@eth1, other/sriov'), 'macvlan-conf@eth1, other/sriov,default/meshcap-cni');
    assert.equal(add('macvlan-conf,'), 'macvlan-conf,default/meshcap-cni');
  });

  test('listed already (exactly, with an interface, or without namespace in the same namespace): unchanged', () => {
    assert.equal(add('default/meshcap-cni'), undefined);
    assert.equal(add('a, default/meshcap-cni@net9'), undefined);
    assert.equal(add('meshcap-cni', 'default'), undefined);
    // In another namespace, a bare name is that namespace's own definition.
    assert.equal(add('meshcap-cni', 'shop'), 'meshcap-cni,default/meshcap-cni');
  });

  test('the JSON array form gets an object appended, and is not duplicated either', () => {
    assert.equal(add('[{"name": "macvlan-conf", "interface": "net1"}]'), '[{"name": "macvlan-conf", "interface": "net1"}, {"name":"meshcap-cni","namespace":"default"}]');
    assert.equal(add('[]'), '[{"name":"meshcap-cni","namespace":"default"}]');
    assert.equal(add('[{"name":"meshcap-cni","namespace":"default"}]'), undefined);
    assert.equal(add('[{"name":"meshcap-cni"}]', 'default'), undefined);
    assert.throws(() => add('[{"name": '), /invalid annotation k8s\.v1\.cni\.cncf\.io\/networks on Pod "shop\/cart"/);
    assert.throws(() => add('[{"interface": "x"}]'), /neither a JSON array/);
  });
});

describe('inject --cni --cni-network-attachment', () => {
  test('the pod lists the NAD, its own networks kept; re-injecting changes nothing', () => {
    const once = injectManifests(podManifest({ [NETWORKS_ANNOTATION]: 'macvlan-conf' }), MULTUS).text;
    assert.equal(networksOf(once), 'macvlan-conf,default/meshcap-cni');
    assert.equal(injectManifests(once, MULTUS).text, once);
    assert.equal(networksOf(injectManifests(podManifest(), MULTUS).text), 'default/meshcap-cni');
    // Chained (no attachment given), nothing is added.
    assert.equal(networksOf(injectManifests(podManifest(), { ...MULTUS, cniNetworkAttachment: undefined }).text), undefined);
  });

  test('a gateway (no capture) gets no attachment', () => {
    const text = injectManifests(podManifest({ 'inject.istio.io/templates': 'gateway' }), MULTUS).text;
    assert.equal(networksOf(text), undefined);
  });

  test('the CLI: the flag needs --cni, a bad value is exit 2 naming it; the output carries the annotation', () => {
    const pod = podManifest();
    const ok = runCli(['inject', '--cni', '--cni-network-attachment', 'default/meshcap-cni', '-f', '-'], { input: pod });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(networksOf(ok.stdout), 'default/meshcap-cni');
    const withoutCni = runCli(['inject', '--cni-network-attachment', 'default/meshcap-cni', '-f', '-'], { input: pod });
    assert.equal(withoutCni.code, 2);
    assert.match(withoutCni.stderr, /--cni-network-attachment.*applies to the CNI layout only/);
    const bad = runCli(['inject', '--cni', '--cni-network-attachment', 'Default/Meshcap', '-f', '-'], { input: pod });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /"Default\/Meshcap"/);
    assert.equal(bad.stdout, '');
  });

  test('the webhook: the patch adds the annotation (settings from the same flags)', () => {
    const settings = settingsFromOptions({ cni: true, 'cni-network-attachment': 'default/meshcap-cni' });
    const pod = (YAML.parse(podManifest({ [NETWORKS_ANNOTATION]: '[{"name":"sriov"}]' })) as JsonObject);
    const response = responseOf(answerReview(JSON.stringify(admissionReview(pod, 'u1', 'shop')), settings).body);
    const patched = applyPatch(pod, patchOf(response)) as { metadata: { annotations: Record<string, string> } };
    assert.equal(patched.metadata.annotations[NETWORKS_ANNOTATION], '[{"name":"sriov"}, {"name":"meshcap-cni","namespace":"default"}]');
  });
});
