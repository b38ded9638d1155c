/**
 * Regressions found in review of the injection engine: YAML anchors and
 * aliases in `meshcap inject`, proxyMetadata env that istio-init would refuse,
 * the size of the verdict cache, and re-injection idempotency (empty Prometheus
 * annotations, pod volumes named like the template's).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { Operation } from 'fast-json-patch';
import YAML from 'yaml';
import { ConfigError } from '../../src/config/parse.js';
import type { JsonObject } from '../../src/inject/json.js';
import { injectManifests } from '../../src/inject/manifest.js';
import { prefixOps } from '../../src/inject/patch.js';
import { injectPod } from '../../src/inject/pod.js';
import { DEFAULT_SETTINGS } from '../../src/inject/settings.js';
import { isList, locatePod } from '../../src/inject/workloads.js';
import { answerReview } from '../../src/webhook/admission.js';
import { admissionReview, applyPatch, patchOf, responseOf } from '../helpers/admission.js';
import { podManifest } from '../helpers/manifests.js';

/** The data the engine's JSON Patch gives (what the webhook returns), applied by an independent RFC 6902 library. */
function patchedData(text: string): unknown {
  const object = YAML.parse(text) as JsonObject;
  const located = isList(object)
    ? object.items.flatMap((item, i) => {
        const found = locatePod(item);
        return found ? [{ ...found, path: ['items', String(i), ...found.path] }] : [];
      })
    : [locatePod(object)!];
  const ops = located.flatMap(({ path, target }) => {
    const outcome = injectPod(target, DEFAULT_SETTINGS);
    assert.equal(outcome.kind, 'injected');
    return outcome.kind === 'injected' ? prefixOps(path, outcome.ops) : [];
  });
  return applyPatch(object, ops as Operation[]);
}

const inject = (text: string) => injectManifests(text, DEFAULT_SETTINGS).text;

describe('meshcap inject: YAML anchors and aliases', () => {
  test('an alias at the pod template labels is edited as a private copy; the anchored selector keeps its value', () => {
    const text = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello
spec:
  selector:
    matchLabels: &l
      app: hello
  template:
    metadata:
      labels: *l # same as the selector
    spec:
      containers:
      - name: hello
        image: hello
`;
    const out = inject(text);
    const data = YAML.parse(out) as { spec: { selector: { matchLabels: unknown }; template: { metadata: { labels: Record<string, string> } } } };
    assert.deepEqual(data, patchedData(text));
    assert.deepEqual(data.spec.selector.matchLabels, { app: 'hello' });
    assert.equal(data.spec.template.metadata.labels['security.istio.io/tlsMode'], 'istio');
    assert.ok(out.startsWith(text.slice(0, text.indexOf('  template:'))), 'the selector is unchanged, anchor included');
    assert.ok(out.includes('# same as the selector'), 'the comment on the alias stays');
  });

  test('an anchor on the template labels: the aliased selector keeps the original labels', () => {
    const text = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello
spec:
  template:
    metadata:
      labels: &labels
        app: hello
        version: v1
    spec:
      containers:
      - name: hello
        image: hello
  selector:
    matchLabels: *labels
`;
    const data = YAML.parse(inject(text)) as { spec: { selector: { matchLabels: unknown }; template: { metadata: { labels: Record<string, string> } } } };
    assert.deepEqual(data, patchedData(text));
    assert.deepEqual(data.spec.selector.matchLabels, { app: 'hello', version: 'v1' });
    assert.equal(data.spec.template.metadata.labels['service.istio.io/canonical-revision'], 'v1');
  });

  test('a Pod: the data is what the webhook patch gives on the same object', () => {
    const text = `apiVersion: v1
kind: Pod
metadata:
  name: app
  namespace: default
  labels: &l
    app: &app hello
spec:
  nodeSelector: *l
  containers:
  - &c
    name: app
    image: app
    ports: [{containerPort: 8080}]
    readinessProbe:
      httpGet: {path: /ready, port: 8080}
  - name: second
    image: app
    env: [{name: APP, value: *app}]
`;
    const object = YAML.parse(text) as JsonObject;
    const response = responseOf(answerReview(JSON.stringify(admissionReview(object)), DEFAULT_SETTINGS).body);
    assert.equal(response.allowed, true);
    const viaWebhook = applyPatch(object, patchOf(response)) as { spec: { nodeSelector: unknown } };
    assert.deepEqual(YAML.parse(inject(text)), viaWebhook);
    assert.deepEqual(viaWebhook.spec.nodeSelector, { app: 'hello' });
    assert.ok(inject(text).includes('- &c\n'), 'the app container (patched key by key) keeps its anchor when nothing aliases it');
  });

  test('two workloads sharing one pod template through an alias are injected each on its own copy', () => {
    const text = `apiVersion: v1
kind: List
items:
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: a}
  spec:
    selector: {matchLabels: {app: a}}
    template: &tpl
      metadata:
        labels: {app: a}
      spec:
        containers:
        - name: app
          image: app
          readinessProbe: {httpGet: {path: /ready, port: 8080}}
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: b}
  spec:
    selector: {matchLabels: {app: a}}
    template: *tpl
`;
    const data = YAML.parse(inject(text)) as { items: { spec: { template: { spec: { initContainers: { env: { name: string; value: string }[] }[] } } } }[] };
    assert.deepEqual(data, patchedData(text));
    // Each Deployment's proxy names its own workload: the two templates were injected separately.
    const workload = (i: number) => data.items[i]!.spec.template.spec.initContainers.find((c) => c.env)!.env.find((e) => e.name === 'ISTIO_META_WORKLOAD_NAME')!.value;
    assert.deepEqual([workload(0), workload(1)], ['a', 'b']);
  });

  test('anchors off the edited paths: the text is unchanged outside the edits, anchors and aliases included', () => {
    const text = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello
  labels: &l
    app: hello
spec:
  selector:
    matchLabels: *l
  template:
    metadata:
      labels:
        app: hello
    spec:
      containers:
      - name: hello
        image: hello
        env: &env
          - name: A
            value: "1"
      - name: helper
        image: helper
        env: *env
`;
    // (An anchored block sequence is written indented: the YAML renderer always writes it so.)
    const out = inject(text);
    assert.deepEqual(YAML.parse(out), patchedData(text));
    assert.ok(out.startsWith(text.slice(0, text.indexOf('  template:'))), 'workload metadata and selector byte for byte');
    assert.ok(out.includes(text.slice(text.indexOf('      containers:'))), 'the app containers byte for byte');
    // Injection only inserts here: every input line is in the output, in order.
    const lines = out.split('\n');
    let at = 0;
    for (const line of text.split('\n')) {
      at = lines.indexOf(line, at);
      assert.notEqual(at, -1, `input line ${JSON.stringify(line)} kept in order`);
      at++;
    }
  });
});

describe('proxyMetadata env is validated as istio-init will read it', () => {
  const pod = (config: string) => podManifest({ 'proxy.istio.io/config': config });
  const bad: [string, string][] = [
    ['proxyMetadata: {ISTIO_META_DNS_CAPTURE: maybe}', 'ISTIO_META_DNS_CAPTURE: maybe'],
    ['proxyMetadata: {ISTIO_OUTBOUND_OWNER_GROUPS: ""}', 'ISTIO_OUTBOUND_OWNER_GROUPS: '],
    ['proxyMetadata: {ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR: bogus}', 'ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR: bogus'],
  ];
  for (const [config, named] of bad) {
    test(`${config} is refused, naming the annotation, the key and the value`, () => {
      assert.throws(
        () => inject(pod(config)),
        (error: unknown) =>
          error instanceof ConfigError &&
          error.message.includes('proxy.istio.io/config proxyMetadata') &&
          error.message.includes(JSON.stringify(named)) &&
          !error.message.includes('\n'),
      );
    });
  }
  test('valid entries are accepted and reach the istio-init env', () => {
    const out = YAML.parse(inject(pod('proxyMetadata: {ISTIO_META_DNS_CAPTURE: "true", ISTIO_OUTBOUND_OWNER_GROUPS: "1000,app"}')));
    const init = (out.spec.initContainers as { name: string; env?: unknown }[]).find((c) => c.name === 'istio-init')!;
    assert.deepEqual(init.env, [{ name: 'ISTIO_META_DNS_CAPTURE', value: 'true' }, { name: 'ISTIO_OUTBOUND_OWNER_GROUPS', value: '1000,app' }]);
  });
});

describe('the verdict cache of istio-init args', () => {
  const ranges = Array.from({ length: 6000 }, (_, i) => `10.${(i >> 8) & 255}.${i & 255}.0/24`).join(',');
  const target = (excluded: string) => ({
    metadata: { name: 'p', annotations: { 'traffic.sidecar.istio.io/excludeOutboundIPRanges': excluded } },
    hasMetadata: true,
    spec: { containers: [{ name: 'a', image: 'a' }] },
    workload: { apiVersion: 'v1', kind: 'Pod', name: 'p', namespace: 'ns' },
    subject: 'Pod "ns/p"',
  });

  test('verdicts on large args stay correct, cached or not', () => {
    for (let round = 0; round < 2; round++) {
      assert.equal(injectPod(target(ranges), DEFAULT_SETTINGS).kind, 'injected');
      assert.throws(() => injectPod(target(`${ranges},10.0.0.0/40`), DEFAULT_SETTINGS), ConfigError);
      assert.throws(() => injectPod(target(`${ranges},*`), DEFAULT_SETTINGS), ConfigError);
      assert.equal(injectPod(target(`${ranges},192.168.0.0/16`), DEFAULT_SETTINGS).kind, 'injected');
    }
  });

  test('distinct pods with large args do not leave their args in the cache', () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    injectPod(target(ranges), DEFAULT_SETTINGS);
    gc();
    const before = process.memoryUsage().heapUsed;
    const count = 100;
    for (let i = 0; i < count; i++) injectPod(target(`${ranges},172.16.${i}.0/24`), DEFAULT_SETTINGS);
    gc();
    const growth = process.memoryUsage().heapUsed - before;
    // Keys holding the args would keep about count * ranges.length bytes (8.5 MB).
    assert.ok(growth < (count * ranges.length) / 4, `heap grew by ${growth} bytes over ${count} pods`);
  });
});

describe('re-injection is idempotent', () => {
  const pod = podManifest;

  test('an empty Prometheus annotation is restored as it was', () => {
    const cases: Record<string, string>[] = [
      { 'prometheus.io/port': '' },
      { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '', 'prometheus.io/path': '' },
    ];
    for (const annotations of cases) {
      const once = inject(pod(annotations));
      assert.equal(inject(once), once);
    }
  });

  test("Istio's saved form ({scrape, path, port}, \"\" for absent) restores only the annotations that were there", () => {
    const once = inject(pod({ 'prometheus.io/scrape': 'true' }));
    const istio = once.replace(`'{"scrape":"true"}'`, `'{"scrape":"true","path":"","port":""}'`);
    assert.notEqual(istio, once);
    assert.equal(inject(istio), once);
  });

  test('a pod volume named like a template volume is refused, naming it', () => {
    for (const name of ['istio-envoy', 'istio-data']) {
      assert.throws(
        () => inject(pod({}, `  volumes:\n  - name: ${name}\n    emptyDir: {}\n`)),
        (error: unknown) => error instanceof ConfigError && error.message.includes(`"${name}"`) && !error.message.includes('\n'),
      );
    }
  });

  test('on re-injection the volumes the status records are the injected ones; any other same-named volume is the pod\'s own', () => {
    const once = inject(pod({}, '  volumes:\n  - name: own\n    emptyDir: {}\n'));
    assert.equal(inject(once), once);
    const object = YAML.parse(once) as { metadata: { annotations: Record<string, string> } };
    const status = JSON.parse(object.metadata.annotations['sidecar.istio.io/status']!) as { volumes: string[] };
    status.volumes = status.volumes.filter((v) => v !== 'istio-envoy');
    object.metadata.annotations['sidecar.istio.io/status'] = JSON.stringify(status);
    assert.throws(() => inject(YAML.stringify(object)), (error: unknown) => error instanceof ConfigError && error.message.includes('"istio-envoy"'));
  });
});

describe('YAML that kubectl reads differently from the tree is refused, not mis-edited', () => {
  const pod = (head: string, spec = '  containers:\n  - name: app\n    image: app\n') => `${head}apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n${spec}`;
  const cases: [string, string, RegExp][] = [
    ['YAML 1.1 (a container named no)', `%YAML 1.1\n---\n${pod('', '  containers:\n  - name: no\n    image: app\n')}`, /YAML 1\.1/],
    ['a merge key', pod('', '  <<: {hostNetwork: false}\n  containers:\n  - name: app\n    image: app\n'), /merge key/],
    ['a duplicate key written as an alias', pod('', '  &v volumes: []\n  containers:\n  - name: app\n    image: app\n  *v : [{name: data, emptyDir: {}}]\n'), /anchor or a tag on the key "volumes"/],
    ['a key that is an alias of its own map', 'apiVersion: v1\nkind: Pod\nmetadata: &m {name: p, ? *m : x}\nspec:\n  containers:\n  - name: app\n    image: app\n', /key that is an alias/],
    ['an anchor on the first key', pod('', '  containers:\n  - name: app\n    image: app\n').replace('apiVersion', '&k apiVersion'), /anchor or a tag on the key "apiVersion"/],
    ['a tag on the first key', pod('', '  containers:\n  - name: app\n    image: app\n').replace('apiVersion', '!!str apiVersion'), /anchor or a tag on the key "apiVersion"/],
  ];
  for (const [name, text, message] of cases) {
    test(name, () => {
      assert.throws(
        () => injectManifests(text, DEFAULT_SETTINGS),
        (error: unknown) => error instanceof ConfigError && message.test(error.message) && error.message.includes('document 1') && !error.message.includes('\n'),
      );
    });
  }

  test('documents that are not injected may use any of it: they pass through byte for byte', () => {
    const configMap = '%YAML 1.1\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  base: &b x\n  <<: {merged: y}\n';
    assert.equal(injectManifests(configMap, DEFAULT_SETTINGS).text, configMap);
  });
});
