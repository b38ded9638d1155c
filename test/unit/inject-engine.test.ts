/** The injection engine's rules that Istio's anchors do not pin down: validation table, legacy hold layout, layout switches. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import YAML from 'yaml';
import { ConfigError } from '../../src/config/parse.js';
import { injectManifests } from '../../src/inject/manifest.js';
import { DEFAULT_SETTINGS, type InjectSettings } from '../../src/inject/settings.js';
import { podManifest } from '../helpers/manifests.js';

const pod = podManifest;

const spec = (text: string) => (YAML.parse(text) as { spec: Record<string, { name: string; [k: string]: unknown }[]> }).spec;
const names = (list: { name: string }[] | undefined) => (list ?? []).map((c) => c.name);

describe('annotation validation: same parsers as the istio-iptables flags', () => {
  const bad: [string, string][] = [
    ['traffic.sidecar.istio.io/includeOutboundIPRanges', '10.0.0.0/33'],
    ['traffic.sidecar.istio.io/includeOutboundIPRanges', '10.0.0.1'],
    ['traffic.sidecar.istio.io/excludeOutboundIPRanges', '*'],
    ['traffic.sidecar.istio.io/includeInboundPorts', '80,*'],
    ['traffic.sidecar.istio.io/includeInboundPorts', '70000'],
    ['traffic.sidecar.istio.io/excludeInboundPorts', '-1'],
    ['traffic.sidecar.istio.io/includeOutboundPorts', 'http'],
    ['traffic.sidecar.istio.io/excludeOutboundPorts', '1;reboot'],
    ['traffic.sidecar.istio.io/excludeInterfaces', 'eth0 eth1'],
    ['istio.io/reroute-virtual-interfaces', 'a-very-long-interface-name'],
    ['traffic.sidecar.istio.io/kubevirtInterfaces', 'net/1'],
    ['sidecar.istio.io/interceptionMode', 'tproxy'],
    ['status.sidecar.istio.io/port', '0x10'],
    ['readiness.status.sidecar.istio.io/periodSeconds', '-5'],
    ['sidecar.istio.io/nativeSidecar', 'yes'],
    ['sidecar.istio.io/proxyCPU', '1 core'],
    ['sidecar.istio.io/agentLogLevel', 'info\nx'],
    ['proxy.istio.io/config', 'holdApplicationUntilProxyStarts: maybe'],
    ['proxy.istio.io/config', '[1, 2'],
    ['proxy.istio.io/config', 'proxyMetadata: {"BAD NAME": x}'],
    ['proxy.istio.io/config', 'proxyMetadata: {A: x}\nproxyMetadata: {B: y}'],
    ['proxy.istio.io/config', '{"proxyMetadata": {"A": "x", "A": "y"}}'],
    ['sidecar.istio.io/userVolume', '{"certs":'],
    ['sidecar.istio.io/userVolume', '["certs"]'],
    ['sidecar.istio.io/userVolume', '{"Certs":{"secret":{"secretName":"c"}}}'],
    ['sidecar.istio.io/userVolume', '{"certs":"secret"}'],
    ['sidecar.istio.io/userVolume', '{"certs":{"secret":{"secretName":"c"},"emptyDir":{}}}'],
    ['sidecar.istio.io/userVolume', '{"istio-data":{"emptyDir":{}}}'],
    ['sidecar.istio.io/userVolumeMount', '{"certs":{"readOnly":true}}'],
    ['sidecar.istio.io/userVolumeMount', '{"certs":{"mountPath":"etc/certs"}}'],
    ['sidecar.istio.io/userVolumeMount', '{"nowhere":{"mountPath":"/etc/x"}}'],
  ];
  for (const [annotation, value] of bad) {
    test(`${annotation}: ${JSON.stringify(value)} is rejected, naming both`, () => {
      assert.throws(
        () => injectManifests(pod({ [annotation]: value }), DEFAULT_SETTINGS),
        (error: unknown) => error instanceof ConfigError && error.message.includes(annotation) && !error.message.includes('\n'),
      );
    });
  }

  test('valid values are accepted and reach the args', () => {
    const out = injectManifests(pod({
      'traffic.sidecar.istio.io/includeOutboundPorts': '443,8443',
      'traffic.sidecar.istio.io/excludeInterfaces': 'eth1',
      'traffic.sidecar.istio.io/includeOutboundIPRanges': '10.0.0.0/8,2001:db8::/32',
    }), DEFAULT_SETTINGS);
    const args = spec(out.text).initContainers![0]!.args as string[];
    assert.deepEqual(args.slice(args.indexOf('-q'), args.indexOf('-q') + 2), ['-q', '443,8443']);
    assert.deepEqual(args.slice(args.indexOf('-c'), args.indexOf('-c') + 2), ['-c', 'eth1']);
  });
});

describe('user volumes for the proxy (sidecar.istio.io/userVolume, userVolumeMount)', () => {
  const annotations = {
    'sidecar.istio.io/userVolume': '{"tls":{"secret":{"secretName":"app-tls"}},"extra":{"configMap":{"name":"extra"}}}',
    'sidecar.istio.io/userVolumeMount': '{"tls":{"mountPath":"/etc/tls","readOnly":true},"own":{"mountPath":"/etc/own"}}',
  };
  const withOwnVolume = `  volumes:\n  - name: own\n    emptyDir: {}\n`;

  test('volumes join the injected ones in name order, mounts go to the proxy, the status lists the volumes', () => {
    const text = injectManifests(pod(annotations, withOwnVolume), DEFAULT_SETTINGS).text;
    const volumes = spec(text).volumes!;
    const injected = volumes.slice(0, -1).map((v) => v.name);
    assert.deepEqual(injected.slice(-2), ['extra', 'tls']);
    assert.deepEqual(volumes.find((v) => v.name === 'tls'), { name: 'tls', secret: { secretName: 'app-tls' } });
    assert.equal(volumes.at(-1)!.name, 'own', "the pod's own volume stays, after the injected ones");
    const proxy = spec(text).initContainers!.find((c) => c.name === 'istio-proxy')!;
    const mounts = proxy.volumeMounts as { name: string; mountPath: string }[];
    assert.deepEqual(mounts.slice(-2), [{ name: 'own', mountPath: '/etc/own' }, { name: 'tls', mountPath: '/etc/tls', readOnly: true }]);
    const status = JSON.parse((YAML.parse(text) as { metadata: { annotations: Record<string, string> } }).metadata.annotations['sidecar.istio.io/status']!);
    assert.deepEqual(status.volumes.slice(-2), ['extra', 'tls']);
    assert.ok(!status.volumes.includes('own'));
  });

  test('re-injection strips and re-adds them: idempotent, and dropping the annotation removes them', () => {
    const once = injectManifests(pod(annotations, withOwnVolume), DEFAULT_SETTINGS).text;
    assert.equal(injectManifests(once, DEFAULT_SETTINGS).text, once);
    const doc = YAML.parse(once) as { metadata: { annotations: Record<string, string> } };
    delete doc.metadata.annotations['sidecar.istio.io/userVolume'];
    delete doc.metadata.annotations['sidecar.istio.io/userVolumeMount'];
    const without = spec(injectManifests(JSON.stringify(doc), DEFAULT_SETTINGS).text);
    assert.deepEqual(without.volumes!.filter((v) => ['tls', 'extra'].includes(v.name)), []);
    assert.deepEqual(without.volumes!.map((v) => v.name), spec(injectManifests(pod({}, withOwnVolume), DEFAULT_SETTINGS).text).volumes!.map((v) => v.name));
  });
});

describe('startup ordering', () => {
  const legacy: InjectSettings = { ...DEFAULT_SETTINGS, nativeSidecars: false };
  test('legacy with hold (meshcap default): proxy first, postStart waits for readiness, istio-init last', () => {
    const s = spec(injectManifests(pod({}, '  initContainers:\n  - name: migrate\n    image: m\n'), legacy).text);
    assert.deepEqual(names(s.containers), ['istio-proxy', 'app']);
    assert.deepEqual(names(s.initContainers), ['migrate', 'istio-init']);
    const proxy = s.containers![0]!;
    assert.deepEqual(proxy.lifecycle, { postStart: { exec: { command: ['pilot-agent', 'wait'] } } });
    assert.equal(proxy.restartPolicy, undefined);
  });
  test('legacy without hold: proxy last, no hook', () => {
    const s = spec(injectManifests(pod(), { ...legacy, holdApplicationUntilProxyStarts: false }).text);
    assert.deepEqual(names(s.containers), ['app', 'istio-proxy']);
    assert.equal(s.containers![1]!.lifecycle, undefined);
  });
  test('per-pod hold through proxy.istio.io/config overrides the setting', () => {
    const s = spec(injectManifests(pod({ 'proxy.istio.io/config': '{ "holdApplicationUntilProxyStarts": true }' }),
      { ...legacy, holdApplicationUntilProxyStarts: false }).text);
    assert.deepEqual(names(s.containers), ['istio-proxy', 'app']);
  });
  test('native: istio-init, istio-proxy (restartPolicy Always, startup probe), then user init containers', () => {
    const s = spec(injectManifests(pod({}, '  initContainers:\n  - name: migrate\n    image: m\n'), DEFAULT_SETTINGS).text);
    assert.deepEqual(names(s.initContainers), ['istio-init', 'istio-proxy', 'migrate']);
    assert.equal(s.initContainers![1]!.restartPolicy, 'Always');
    assert.ok(s.initContainers![1]!.startupProbe);
  });
  test('re-injection switches layouts cleanly (native -> legacy -> native) and is idempotent', () => {
    const native = injectManifests(pod(), DEFAULT_SETTINGS).text;
    const toLegacy = injectManifests(native, legacy).text;
    assert.deepEqual(names(spec(toLegacy).initContainers), ['istio-init']);
    assert.deepEqual(names(spec(toLegacy).containers), ['istio-proxy', 'app']);
    const back = injectManifests(toLegacy, DEFAULT_SETTINGS).text;
    assert.deepEqual(spec(back), spec(native));
    assert.equal(injectManifests(back, DEFAULT_SETTINGS).text, back);
  });
  test('interceptionMode NONE: no istio-init', () => {
    const s = spec(injectManifests(pod({ 'sidecar.istio.io/interceptionMode': 'NONE' }), DEFAULT_SETTINGS).text);
    assert.deepEqual(names(s.initContainers), ['istio-proxy']);
  });
});

describe('manifest handling', () => {
  test('comments and untouched documents survive; opted-out label skips', () => {
    const text = `# leading comment\n${pod()}---\n# a config map\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: "1"}\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: off\n  labels: {sidecar.istio.io/inject: "false"}\nspec:\n  containers: [{name: a, image: a}]\n`;
    const out = injectManifests(text, DEFAULT_SETTINGS);
    assert.ok(out.text.startsWith('# leading comment\n'));
    const tail = text.slice(text.indexOf('---\n# a config map'));
    assert.ok(out.text.endsWith(tail), 'ConfigMap and opted-out Pod byte for byte');
    assert.equal(out.injected, 1);
    assert.equal(out.skipped, 1);
  });
  test('CronJob: labels and annotations on spec.jobTemplate.spec.template.metadata', () => {
    const cron = `apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\nspec:\n  schedule: "* * * * *"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          containers: [{name: a, image: a}]\n`;
    const object = YAML.parse(injectManifests(cron, DEFAULT_SETTINGS).text);
    const template = object.spec.jobTemplate.spec.template;
    assert.ok(template.metadata.annotations['sidecar.istio.io/status']);
    assert.equal(template.metadata.labels['security.istio.io/tlsMode'], 'istio');
    assert.equal(object.spec.jobTemplate.metadata, undefined);
  });
  test('invalid YAML: a ConfigError naming the document', () => {
    assert.throws(() => injectManifests('a: [1\n', DEFAULT_SETTINGS), /document 1/);
  });
});

describe('the JSON Patch', () => {
  test('an app container whose probe is rewritten is patched in place, key by key, never removed and re-added', async () => {
    const { injectPod } = await import('../../src/inject/pod.js');
    const app = { name: 'app', image: 'app', ports: [{ containerPort: 8080 }], readinessProbe: { httpGet: { path: '/ready', port: 8080 } } };
    const sidecar = { name: 'log', image: 'log' };
    const outcome = injectPod(
      { metadata: { name: 'p' }, hasMetadata: true, spec: { containers: [app, sidecar] }, workload: { apiVersion: 'v1', kind: 'Pod', name: 'p', namespace: 'ns' }, subject: 'Pod "ns/p"' },
      { ...DEFAULT_SETTINGS, nativeSidecars: false, holdApplicationUntilProxyStarts: false },
    );
    assert.equal(outcome.kind, 'injected');
    const containerOps = outcome.kind === 'injected' ? outcome.ops.filter((op) => op.path.startsWith('/spec/containers')) : [];
    assert.deepEqual(
      containerOps.map((op) => `${op.op} ${op.path}`),
      // The proxy is appended (legacy layout, no hold); only the rewritten probe of the app changes.
      ['add /spec/containers/2', 'replace /spec/containers/0/readinessProbe'],
    );
  });
});
