/**
 * The last differences from Istio's injector (issue 15), on meshcap's own
 * manifests: TPROXY with a user-set proxy uid, the Prometheus opt-out in every
 * spelling, owners (the same in `inject` and the webhook), DeploymentConfig,
 * inject.istio.io/templates, and the warning for kinds that are not injected.
 * Istio's goldens for the same behaviours run in test/golden/istio-inject.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import YAML from 'yaml';
import { ConfigError } from '../../src/config/parse.js';
import type { JsonObject } from '../../src/inject/json.js';
import { injectManifests } from '../../src/inject/manifest.js';
import { DEFAULT_SETTINGS } from '../../src/inject/settings.js';
import { answerReview } from '../../src/webhook/admission.js';
import { admissionReview, applyPatch, patchOf, responseOf } from '../helpers/admission.js';
import { runCli } from '../helpers/cli.js';
import { podManifest } from '../helpers/manifests.js';

interface Container {
  name: string;
  image?: string;
  args?: string[];
  env?: { name: string; value?: string }[];
  ports?: JsonObject[];
  securityContext?: Record<string, unknown>;
  restartPolicy?: string;
  lifecycle?: JsonObject;
  startupProbe?: JsonObject;
}
interface Pod {
  metadata: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: { initContainers?: Container[]; containers: Container[]; securityContext?: { sysctls?: { name: string; value: string }[] } };
}

const inject = (text: string, settings = DEFAULT_SETTINGS) => injectManifests(text, settings);
/** The pod (template) of the first document of the output. */
const podOf = (text: string): Pod => {
  const object = YAML.parse(text) as { kind: string; spec: { template?: Pod } } & Pod;
  return object.kind === 'Pod' ? object : object.spec.template!;
};
const all = (pod: Pod) => [...(pod.spec.initContainers ?? []), ...pod.spec.containers];
const proxyOf = (pod: Pod) => all(pod).find((c) => c.name === 'istio-proxy')!;
const initOf = (pod: Pod) => pod.spec.initContainers?.find((c) => c.name === 'istio-init');
const uidArg = (pod: Pod) => initOf(pod)!.args![initOf(pod)!.args!.indexOf('-u') + 1];
const env = (c: Container, name: string) => c.env?.find((e) => e.name === name)?.value;

const withProxy = (annotations: Record<string, string>, securityContext: string) =>
  podManifest(annotations, `  - name: istio-proxy\n    image: auto\n    securityContext: ${securityContext}\n`);

describe('TPROXY with a user-set proxy uid (Istio: adjustInitContainerUser)', () => {
  test('istio-init exempts the user uid; the proxy runs as root with runAsNonRoot false, keeping the user group', () => {
    const pod = podOf(inject(withProxy({ 'sidecar.istio.io/interceptionMode': 'TPROXY' }, '{runAsUser: 1234, runAsGroup: 4321}')).text);
    assert.equal(uidArg(pod), '1234');
    const sc = proxyOf(pod).securityContext!;
    assert.equal(sc.runAsUser, 0);
    assert.equal(sc.runAsNonRoot, false);
    assert.equal(sc.runAsGroup, 4321);
    assert.deepEqual((sc.capabilities as { add: string[] }).add, ['NET_ADMIN']);
  });

  test('a user runAsNonRoot: true cannot leave a root proxy the kubelet would refuse to start', () => {
    const pod = podOf(inject(withProxy({ 'sidecar.istio.io/interceptionMode': 'TPROXY' }, '{runAsUser: 1234, runAsNonRoot: true}')).text);
    assert.equal(proxyOf(pod).securityContext!.runAsNonRoot, false);
    assert.equal(proxyOf(pod).securityContext!.runAsUser, 0);
  });

  test('REDIRECT: the user uid goes to -u and the proxy keeps it; uid 0 is never exempted', () => {
    const pod = podOf(inject(withProxy({}, '{runAsUser: 1234}')).text);
    assert.equal(uidArg(pod), '1234');
    assert.equal(proxyOf(pod).securityContext!.runAsUser, 1234);
    assert.equal(uidArg(podOf(inject(withProxy({}, '{runAsUser: 0}')).text)), '1337');
  });

  test('TPROXY without a user uid: -u 1337, as Istio\'s template', () => {
    const pod = podOf(inject(podManifest({ 'sidecar.istio.io/interceptionMode': 'TPROXY' })).text);
    assert.equal(uidArg(pod), '1337');
    assert.equal(proxyOf(pod).securityContext!.runAsUser, 0);
  });
});

describe('Prometheus opt-out: every spelling and boolean form Prometheus and Go accept', () => {
  const keys = ['prometheus.io/scrape', 'prometheus.io.scrape', 'prometheus-io/scrape', 'prometheus_io_scrape'];
  const merged = (pod: Pod) => pod.metadata.annotations?.['prometheus.io/path'] === '/stats/prometheus';

  for (const key of keys) {
    for (const value of ['false', 'False', 'FALSE', '0', 'f', 'F']) {
      test(`${key}: ${JSON.stringify(value)} stops the merge: no prometheus.io/* added, the app's annotation kept, nothing moved to the proxy`, () => {
        const pod = podOf(inject(podManifest({ [key]: value, 'prometheus.io/port': '9090' })).text);
        assert.equal(merged(pod), false);
        assert.equal(pod.metadata.annotations![key], value);
        assert.equal(pod.metadata.annotations!['prometheus.io/port'], '9090');
        assert.equal(env(proxyOf(pod), 'ISTIO_PROMETHEUS_ANNOTATIONS'), undefined);
      });
    }
  }

  test('true forms, and values ParseBool refuses ("yes"), keep the merge; every other spelling is replaced by the canonical one', () => {
    for (const value of ['true', 'True', '1', 't', 'yes']) {
      const pod = podOf(inject(podManifest({ 'prometheus.io.scrape': value, 'prometheus-io/port': '9090' })).text);
      assert.ok(merged(pod), value);
      const annotations = pod.metadata.annotations!;
      assert.equal(annotations['prometheus.io.scrape'], undefined, 'variant cleared: Prometheus would pick one of two at random');
      assert.equal(annotations['prometheus-io/port'], undefined);
      assert.equal(annotations['prometheus.io/scrape'], 'true');
      assert.equal(annotations['prometheus.io/port'], '15020');
      assert.deepEqual(JSON.parse(env(proxyOf(pod), 'ISTIO_PROMETHEUS_ANNOTATIONS')!), { scrape: value, port: '9090' });
    }
  });

  test('re-injecting a merged pod whose app used a variant spelling changes nothing', () => {
    const once = inject(podManifest({ 'prometheus.io.scrape': 'true', 'prometheus.io.port': '9090' })).text;
    assert.equal(inject(once).text, once);
  });

  test('prometheus.istio.io/merge-metrics: any false form turns the merge off; a non-boolean is refused, naming it', () => {
    assert.equal(merged(podOf(inject(podManifest({ 'prometheus.istio.io/merge-metrics': 'False' })).text)), false);
    assert.throws(() => inject(podManifest({ 'prometheus.istio.io/merge-metrics': 'maybe' })), (e: unknown) => e instanceof ConfigError && /merge-metrics/.test(e.message));
  });

  test('prometheus.io/port follows the status port, and nothing is added when the status port is 0', () => {
    assert.equal(podOf(inject(podManifest({ 'status.sidecar.istio.io/port': '15555' })).text).metadata.annotations!['prometheus.io/port'], '15555');
    const off = podOf(inject(podManifest({ 'status.sidecar.istio.io/port': '0' })).text);
    assert.equal(off.metadata.annotations!['prometheus.io/port'], undefined);
    assert.equal(merged(off), false);
  });
});

describe('owners: a Pod takes its names from its controller, in inject exactly as in the webhook', () => {
  const ownedPod = (owner: JsonObject, labels: Record<string, string> = {}, name = 'p-abcde'): JsonObject => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, generateName: name.replace(/[^-]+$/, ''), namespace: 'shop', labels, ownerReferences: [{ controller: true, uid: 'u-1', ...owner }] },
    spec: { containers: [{ name: 'app', image: 'app' }] },
  });
  const viaInject = (pod: JsonObject) => podOf(inject(YAML.stringify(pod)).text);
  const viaWebhook = (pod: JsonObject) => {
    const response = responseOf(answerReview(JSON.stringify(admissionReview(pod, 'u', 'shop')), DEFAULT_SETTINGS).body);
    return applyPatch(pod, patchOf(response)) as unknown as Pod;
  };
  const names = (pod: Pod) => ({
    canonical: pod.metadata.labels!['service.istio.io/canonical-name'],
    workload: env(proxyOf(pod), 'ISTIO_META_WORKLOAD_NAME'),
    owner: env(proxyOf(pod), 'ISTIO_META_OWNER'),
  });

  const cases: [string, JsonObject, JsonObject][] = [
    ['ReplicaSet -> Deployment (pod-template-hash stripped)',
      ownedPod({ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'hello-7d9f8c6b5' }, { 'pod-template-hash': '7d9f8c6b5' }, 'hello-7d9f8c6b5-x2x4z'),
      { canonical: 'hello', workload: 'hello', owner: 'kubernetes://apis/apps/v1/namespaces/shop/deployments/hello' }],
    ['ReplicaSet of an Argo Rollout -> Rollout',
      ownedPod({ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'canary-6f7c9d' }, { 'rollouts-pod-template-hash': '6f7c9d' }),
      { canonical: 'canary', workload: 'canary', owner: 'kubernetes://apis/argoproj.io/v1alpha1/namespaces/shop/rollouts/canary' }],
    ['Job -> CronJob (scheduled-time suffix stripped)',
      ownedPod({ apiVersion: 'batch/v1', kind: 'Job', name: 'backup-29140320' }),
      { canonical: 'backup', workload: 'backup', owner: 'kubernetes://apis/batch/v1/namespaces/shop/cronjobs/backup' }],
    ['ReplicationController of a DeploymentConfig -> DeploymentConfig',
      ownedPod({ apiVersion: 'v1', kind: 'ReplicationController', name: 'frontend-3' }, { deploymentconfig: 'frontend' }),
      { canonical: 'frontend', workload: 'frontend', owner: 'kubernetes://apis/apps.openshift.io/v1/namespaces/shop/deploymentconfigs/frontend' }],
    ['StatefulSet stays itself',
      ownedPod({ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'db' }, {}, 'db-0'),
      { canonical: 'db', workload: 'db', owner: 'kubernetes://apis/apps/v1/namespaces/shop/statefulsets/db' }],
    ['a Job not made by a CronJob stays a Job',
      ownedPod({ apiVersion: 'batch/v1', kind: 'Job', name: 'migrate' }),
      { canonical: 'migrate', workload: 'migrate', owner: 'kubernetes://apis/batch/v1/namespaces/shop/jobs/migrate' }],
  ];
  for (const [name, pod, want] of cases) {
    test(name, () => {
      assert.deepEqual(names(viaInject(pod)), want);
      assert.deepEqual(names(viaWebhook(pod)), want);
    });
  }

  test('an owner that is not the controller is ignored; the app label wins over the owner for the canonical name', () => {
    const pod = ownedPod({ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'hello-abc', controller: false }, { 'pod-template-hash': 'abc' }, 'lonely');
    assert.deepEqual(names(viaInject(pod)), { canonical: 'lonely', workload: 'lonely', owner: 'kubernetes://apis/v1/namespaces/shop/pods/lonely' });
    const labelled = ownedPod({ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'hello-abc' }, { 'pod-template-hash': 'abc', app: 'storefront' });
    assert.equal(names(viaWebhook(labelled)).canonical, 'storefront');
    assert.equal(names(viaInject(labelled)).canonical, 'storefront');
  });

  test('the canonical-name label is cut to 63 characters and trimmed of -_. at both ends, as Istio does', () => {
    const long = `${'a'.repeat(62)}-tail`;
    const pod = podOf(inject(podManifest().replace('  name: app\n', `  name: app\n  labels: {app: "${long}"}\n`)).text);
    assert.equal(pod.metadata.labels!['service.istio.io/canonical-name'], 'a'.repeat(62));
    const dotted = podOf(inject(podManifest().replace('  name: app\n', '  name: app\n  labels: {app: "_.svc-"}\n')).text);
    assert.equal(dotted.metadata.labels!['service.istio.io/canonical-name'], 'svc');
  });
});

describe('OpenShift DeploymentConfig (apps.openshift.io/v1) is injected like a Deployment', () => {
  test('its pod template gets the sidecar, its owner env names the DeploymentConfig, triggers are kept', () => {
    const text = `apiVersion: apps.openshift.io/v1
kind: DeploymentConfig
metadata:
  name: frontend
  namespace: web
spec:
  replicas: 2
  triggers:
  - type: ConfigChange
  template:
    metadata:
      labels:
        app: frontend
    spec:
      containers:
      - name: frontend
        image: frontend
`;
    const out = inject(text);
    assert.equal(out.injected, 1);
    assert.deepEqual(out.warnings, []);
    const pod = podOf(out.text);
    assert.ok(initOf(pod));
    assert.equal(env(proxyOf(pod), 'ISTIO_META_OWNER'), 'kubernetes://apis/apps.openshift.io/v1/namespaces/web/deploymentconfigs/frontend');
    assert.match(out.text, /triggers:\n {2}- type: ConfigChange/);
  });
});

describe('inject.istio.io/templates', () => {
  const gatewayDeployment = (containers: string, extraSpec = '') => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ingress
spec:
  template:
    metadata:
      annotations:
        inject.istio.io/templates: gateway
      labels:
        istio: ingressgateway
    spec:
${extraSpec}      containers:
${containers}`;
  const gatewayProxy = '      - name: istio-proxy\n        image: auto\n        ports:\n        - containerPort: 8080\n          name: http2\n';

  test('gateway: no istio-init, the user\'s istio-proxy completed in place as a router, nothing a sidecar adds', () => {
    const out = inject(gatewayDeployment(gatewayProxy));
    const pod = podOf(out.text);
    assert.equal(pod.spec.initContainers, undefined);
    assert.deepEqual(pod.spec.containers.map((c) => c.name), ['istio-proxy']);
    const proxy = proxyOf(pod);
    assert.equal(proxy.image, 'docker.io/istio/proxyv2:1.27.0');
    assert.deepEqual(proxy.args!.slice(0, 2), ['proxy', 'router']);
    assert.equal(proxy.restartPolicy, undefined);
    assert.equal(proxy.lifecycle, undefined, 'no hold hook: the gateway is the pod');
    assert.equal(proxy.startupProbe, undefined);
    assert.deepEqual(proxy.securityContext, { runAsGroup: 1337, runAsUser: 1337 });
    assert.deepEqual(JSON.parse(env(proxy, 'ISTIO_META_POD_PORTS')!), [{ containerPort: 8080, name: 'http2' }], 'the gateway\'s own listeners');
    assert.deepEqual(pod.spec.securityContext, { sysctls: [{ name: 'net.ipv4.ip_unprivileged_port_start', value: '0' }] });
    assert.equal(pod.metadata.labels!['security.istio.io/tlsMode'], undefined);
    const status = JSON.parse(pod.metadata.annotations!['sidecar.istio.io/status']!);
    assert.deepEqual([status.initContainers, status.containers], [null, ['istio-proxy']]);
    assert.ok(!status.volumes.includes('istio-ca-crl'));
    assert.equal(inject(out.text).text, out.text, 're-injection changes nothing');
  });

  test('gateway: the proxy stays where the user put it among other containers; the pod\'s own sysctls are kept', () => {
    const containers = '      - name: before\n        image: b\n' + gatewayProxy + '      - name: after\n        image: a\n';
    const extra = '      securityContext:\n        sysctls:\n        - name: net.ipv4.tcp_syncookies\n          value: "1"\n';
    const pod = podOf(inject(gatewayDeployment(containers, extra)).text);
    assert.deepEqual(pod.spec.containers.map((c) => c.name), ['before', 'istio-proxy', 'after']);
    assert.deepEqual(pod.spec.securityContext!.sysctls!.map((s) => s.name), ['net.ipv4.tcp_syncookies', 'net.ipv4.ip_unprivileged_port_start']);
  });

  test('gateway: a pod without its own istio-proxy gets one appended, never containers: []', () => {
    const pod = podOf(inject(gatewayDeployment('      - name: app\n        image: app\n')).text);
    assert.deepEqual(pod.spec.containers.map((c) => c.name), ['app', 'istio-proxy']);
  });

  test('sidecar is the default template, named or not', () => {
    assert.equal(inject(podManifest({ 'inject.istio.io/templates': ' sidecar ' })).text.replace(/ *inject\.istio\.io\/templates.*\n|annotations: \{[^}]*\}/g, ''),
      inject(podManifest()).text.replace(/ *inject\.istio\.io\/templates.*\n|annotations: \{[^}]*\}/g, ''));
  });

  for (const value of ['grpc-agent', 'waypoint', 'sidecar,gateway', 'sidecar,spire', '']) {
    test(`${JSON.stringify(value)} is refused, naming it: exit 2 and one line from the CLI, denied by the webhook`, () => {
      const cli = runCli(['inject', '-f', '-'], { input: podManifest({ 'inject.istio.io/templates': value }) });
      assert.equal(cli.code, 2, cli.stderr);
      assert.equal(cli.stdout, '');
      assert.equal(cli.stderr.trim().split('\n').length, 1, cli.stderr);
      assert.ok(cli.stderr.includes(`inject.istio.io/templates`) && cli.stderr.includes(JSON.stringify(value)), cli.stderr);
      const pod = YAML.parse(podManifest({ 'inject.istio.io/templates': value })) as JsonObject;
      const response = responseOf(answerReview(JSON.stringify(admissionReview(pod)), DEFAULT_SETTINGS).body);
      assert.equal(response.allowed, false);
      assert.match(String((response.status as JsonObject).message), /inject\.istio\.io\/templates/);
    });
  }
});

describe('kinds meshcap inject does not inject are named on stderr, not passed through silently', () => {
  test('an Argo Rollout and an extensions/v1beta1 Deployment: a warning naming the document; a Service: none', () => {
    const withPods = (apiVersion: string, kind: string, metadata: string) =>
      `apiVersion: ${apiVersion}\nkind: ${kind}\nmetadata: ${metadata}\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        image: app\n`;
    const text = [
      'apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n  - port: 80\n',
      withPods('argoproj.io/v1alpha1', 'Rollout', '{name: canary, namespace: shop}'),
      withPods('extensions/v1beta1', 'Deployment', '{name: old}'),
    ].join('---\n');
    const out = inject(text);
    assert.equal(out.text, text, 'copied byte for byte');
    assert.equal(out.warnings.length, 2, out.warnings.join('\n'));
    assert.match(out.warnings[0]!, /^document 2: Rollout "shop\/canary" \(apiVersion argoproj\.io\/v1alpha1\) has a pod template/);
    assert.match(out.warnings[1]!, /^document 3: Deployment "default\/old" \(apiVersion extensions\/v1beta1\)/);
    const cli = runCli(['inject', '-f', '-'], { input: text });
    assert.equal(cli.code, 0);
    assert.match(cli.stderr, /meshcap inject: warning: document 2: Rollout "shop\/canary"/);
  });
});
