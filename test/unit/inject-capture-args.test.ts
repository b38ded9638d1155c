/**
 * The shared derivation annotations -> istio-iptables args (src/inject/capture-args.ts):
 * against Istio's own istio-init args in its injection goldens, against what the
 * injector writes, and its edges (NONE, invalid values, the user's proxy uid).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import YAML from 'yaml';
import { ConfigError } from '../../src/config/parse.js';
import { PROXY_UID_ANNOTATION, captureArgsFromAnnotations, captureEnvFromAnnotations } from '../../src/inject/capture-args.js';
import { injectManifests } from '../../src/inject/manifest.js';
import { DEFAULT_SETTINGS } from '../../src/inject/settings.js';
import { FIXTURE_CASES, INJECT_CASES, ISTIO_LIKE } from '../golden/inject-cases.js';
import { INJECT_DIR, dirOf, podsOf } from '../golden/inject-compare.js';
import { podManifest } from '../helpers/manifests.js';
import { anchorsOrSkip } from '../helpers/paths.js';

const anchors = anchorsOrSkip();

type Container = { name: string; args?: string[]; securityContext?: { runAsUser?: number } };
const containers = (spec: Record<string, unknown>, key: string) => (spec[key] as Container[] | undefined) ?? [];
const initArgsOf = (text: string) => {
  const spec = (YAML.parse(text) as { spec: Record<string, unknown> }).spec;
  return containers(spec, 'initContainers').find((c) => c.name === 'istio-init')?.args;
};

describe('captureArgsFromAnnotations: Istio goldens', { skip: anchors.available ? false : anchors.reason }, () => {
  test("reproduces istio-init's args of every golden from the input pod's annotations", () => {
    let compared = 0;
    for (const c of INJECT_CASES.filter((x) => x.golden && !x.skipped && !x.error && !x.golden.includes('.cni.'))) {
      const inputs = podsOf(readFileSync(join(INJECT_DIR, c.input), 'utf8'));
      const goldens = podsOf(readFileSync(join(INJECT_DIR, c.golden!), 'utf8'));
      const settings = { ...ISTIO_LIKE, ...c.settings };
      inputs.forEach((pod, i) => {
        const want = containers(goldens[i]!.spec, 'initContainers').find((x) => x.name === 'istio-init')?.args;
        const declared = [...containers(pod.spec, 'containers'), ...containers(pod.spec, 'initContainers')];
        // A user's own istio-init (proxy-override.yaml) replaces the derived args with its own: nothing to derive.
        if (declared.some((x) => x.name === 'istio-init')) return;
        const userProxy = declared.find((x) => x.name === 'istio-proxy');
        const got = captureArgsFromAnnotations((pod.metadata.annotations ?? {}) as Record<string, string>, {
          settings,
          proxyRunAsUser: userProxy?.securityContext?.runAsUser,
        });
        // merge-probers re-injects an already injected pod: its old istio-init is stripped, its args are Istio's own.
        assert.deepEqual(got, want, `#${c.n} ${c.golden} pod ${i}`);
        compared++;
      });
    }
    assert.ok(compared >= 20, `compared ${compared} pods`);
  });
});

describe('captureArgsFromAnnotations: pods Istio injected in CNI mode', { skip: anchors.available ? false : anchors.reason }, () => {
  test("Istio's own CNI annotations give back its istio-validation args (without the two validation flags)", () => {
    const cniCases = [...INJECT_CASES, ...FIXTURE_CASES].filter((c) => c.golden?.includes('.cni.'));
    assert.deepEqual(cniCases.map((c) => c.n), [3, 103]);
    for (const c of cniCases) {
      const [input] = podsOf(readFileSync(join(dirOf(c), c.input), 'utf8'));
      const [golden] = podsOf(readFileSync(join(dirOf(c), c.golden!), 'utf8'));
      const validation = containers(golden!.spec, 'initContainers').find((x) => x.name === 'istio-validation')!;
      assert.deepEqual(validation.args!.slice(-2), ['--run-validation', '--skip-rule-apply']);
      // Istio's plugin reads the uid from the proxy container; meshcap's layout also writes meshcap.io/proxy-uid.
      const userProxy = containers(input!.spec, 'containers').find((x) => x.name === 'istio-proxy');
      const got = captureArgsFromAnnotations(golden!.metadata.annotations as Record<string, string>, {
        settings: { ...ISTIO_LIKE, ...c.settings },
        proxyRunAsUser: userProxy?.securityContext?.runAsUser,
      });
      assert.deepEqual(got, validation.args!.slice(0, -2), `#${c.n}`);
    }
  });
});

describe('captureArgsFromAnnotations: contract', () => {
  test('with no annotations: Istio defaults, starting with the subcommand', () => {
    assert.deepEqual(captureArgsFromAnnotations({}), [
      'istio-iptables', '-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT',
      '-i', '*', '-x', '', '-b', '*', '-d', '15090,15021,15020', '--log_output_level=default:info',
    ]);
  });

  test('interceptionMode NONE (annotation or proxy.istio.io/config): no capture', () => {
    assert.equal(captureArgsFromAnnotations({ 'sidecar.istio.io/interceptionMode': 'NONE' }), undefined);
    assert.equal(captureArgsFromAnnotations({ 'proxy.istio.io/config': 'interceptionMode: NONE' }), undefined);
  });

  test("a gateway (inject.istio.io/templates: gateway) gets no capture: the injector writes no istio-init for it", () => {
    assert.equal(captureArgsFromAnnotations({ 'inject.istio.io/templates': 'gateway' }), undefined);
    const injected = YAML.parse(injectManifests(podManifest({ 'inject.istio.io/templates': 'gateway' }), { ...DEFAULT_SETTINGS, cni: true }).text) as { metadata: { annotations: Record<string, string> } };
    assert.equal(captureArgsFromAnnotations(injected.metadata.annotations), undefined);
    assert.ok(captureArgsFromAnnotations({ 'inject.istio.io/templates': 'sidecar' }));
  });

  test('an invalid annotation throws a ConfigError naming it and the value', () => {
    assert.throws(
      () => captureArgsFromAnnotations({ 'traffic.sidecar.istio.io/excludeOutboundPorts': '1;reboot' }, { subject: 'Pod "x/y"' }),
      (error: unknown) => error instanceof ConfigError && /excludeOutboundPorts/.test(error.message) && /1;reboot/.test(error.message) && /Pod "x\/y"/.test(error.message),
    );
  });

  test('annotations that do not decide capture are not read: a pod another injector accepted is not failed for them', () => {
    const lenient = {
      'inject.istio.io/templates': 'grpc-agent',
      'sidecar.istio.io/rewriteAppHTTPProbers': 'yes',
      'sidecar.istio.io/proxyCPU': '1 core',
      'sidecar.istio.io/userVolume': '{"certs":',
    };
    assert.deepEqual(captureArgsFromAnnotations(lenient), captureArgsFromAnnotations({}));
    assert.throws(() => injectManifests(podManifest(lenient), DEFAULT_SETTINGS), ConfigError, 'the injector still refuses them');
  });

  test("the user's proxy uid is exempted (a pod fact), or the meshcap.io/proxy-uid annotation standing for it", () => {
    const uidOf = (args: string[] | undefined) => args?.[args.indexOf('-u') + 1];
    assert.equal(uidOf(captureArgsFromAnnotations({}, { proxyRunAsUser: 1234 })), '1234');
    assert.equal(uidOf(captureArgsFromAnnotations({}, { proxyRunAsUser: 0 })), '1337', 'uid 0 is never exempted');
    assert.equal(uidOf(captureArgsFromAnnotations({ [PROXY_UID_ANNOTATION]: '4321' })), '4321');
    assert.equal(uidOf(captureArgsFromAnnotations({ [PROXY_UID_ANNOTATION]: '4321' }, { proxyRunAsUser: 1234 })), '1234');
    assert.equal(uidOf(captureArgsFromAnnotations({}, { settings: { ...DEFAULT_SETTINGS, proxyUid: 2000 } })), '2000');
    assert.throws(() => captureArgsFromAnnotations({ [PROXY_UID_ANNOTATION]: 'root' }), (e: unknown) => e instanceof ConfigError && /meshcap\.io\/proxy-uid/.test(e.message));
  });

  test('the env istio-init gets: proxyMetadata, in order', () => {
    assert.deepEqual(captureEnvFromAnnotations({ 'proxy.istio.io/config': 'proxyMetadata: {ISTIO_META_DNS_CAPTURE: "true", B: x}' }), [
      ['ISTIO_META_DNS_CAPTURE', 'true'],
      ['B', 'x'],
    ]);
  });

  test('the injector writes exactly these args into istio-init, for every capture annotation', () => {
    const samples: Record<string, string>[] = [
      {},
      { 'traffic.sidecar.istio.io/includeOutboundIPRanges': '10.0.0.0/8,fd00::/8', 'traffic.sidecar.istio.io/excludeOutboundIPRanges': '10.1.0.0/16' },
      { 'traffic.sidecar.istio.io/includeInboundPorts': '80,8080', 'traffic.sidecar.istio.io/excludeInboundPorts': '9090' },
      { 'traffic.sidecar.istio.io/includeOutboundPorts': '443', 'traffic.sidecar.istio.io/excludeOutboundPorts': '3306,5432' },
      { 'istio.io/reroute-virtual-interfaces': 'net1', 'traffic.sidecar.istio.io/excludeInterfaces': 'eth1' },
      { 'traffic.sidecar.istio.io/kubevirtInterfaces': 'net2' },
      { 'status.sidecar.istio.io/port': '0' },
      { 'status.sidecar.istio.io/port': '123', 'traffic.sidecar.istio.io/excludeInboundPorts': '123' },
      { 'sidecar.istio.io/interceptionMode': 'TPROXY', 'sidecar.istio.io/agentLogLevel': 'default:debug' },
      { 'traffic.sidecar.istio.io/includeOutboundIPRanges': '', 'traffic.sidecar.istio.io/includeInboundPorts': '' },
    ];
    for (const settings of [DEFAULT_SETTINGS, { ...DEFAULT_SETTINGS, nativeNftables: true, proxyPort: 16001, excludeIPRanges: '192.0.2.0/24' }]) {
      for (const annotations of samples) {
        const injected = initArgsOf(injectManifests(podManifest(annotations), settings).text);
        assert.deepEqual(injected, captureArgsFromAnnotations(annotations, { settings }), JSON.stringify(annotations));
      }
    }
  });
});
