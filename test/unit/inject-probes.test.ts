/**
 * App probe rewriting (src/inject/probes.ts) through the engine: every handler
 * kind, hooks, init containers, the switches, re-injection, and the webhook
 * patch giving the same pod as `meshcap inject`.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import YAML from 'yaml';
import { ConfigError } from '../../src/config/parse.js';
import { settingsFromOptions } from '../../src/cli/inject.js';
import { type JsonObject } from '../../src/inject/json.js';
import { injectManifests } from '../../src/inject/manifest.js';
import { DEFAULT_SETTINGS, type InjectSettings } from '../../src/inject/settings.js';
import { answerReview } from '../../src/webhook/admission.js';
import { admissionReview, applyPatch, patchOf, responseOf } from '../helpers/admission.js';

type Container = Record<string, unknown> & { name: string };
interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
}

const podText = (containers: Container[], annotations: Record<string, string> = {}, initContainers?: Container[]) =>
  JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', annotations }, spec: { ...(initContainers ? { initContainers } : {}), containers } });

const inject = (text: string, settings: InjectSettings = DEFAULT_SETTINGS) => injectManifests(text, settings).text;
const parse = (text: string) => YAML.parse(text) as { metadata: JsonObject; spec: PodSpec };
const proxyOf = (s: PodSpec) => [...(s.initContainers ?? []), ...s.containers].find((c) => c.name === 'istio-proxy')!;
const probers = (text: string): Record<string, unknown> | undefined => {
  const env = (proxyOf(parse(text).spec).env as { name: string; value?: string }[]).find((e) => e.name === 'ISTIO_KUBE_APP_PROBERS');
  return env ? (JSON.parse(env.value!) as Record<string, unknown>) : undefined;
};
const proberText = (text: string) =>
  (proxyOf(parse(text).spec).env as { name: string; value?: string }[]).find((e) => e.name === 'ISTIO_KUBE_APP_PROBERS')?.value;
const app = (text: string, name = 'app') => [...(parse(text).spec.initContainers ?? []), ...parse(text).spec.containers].find((c) => c.name === name)!;

const agent = (path: string, port = 15020) => ({ httpGet: { path, port } });

describe('probe handlers', () => {
  test('httpGet on a named port: agent path, original with the port resolved and its path', () => {
    const out = inject(podText([{ name: 'app', image: 'a', ports: [{ name: 'http', containerPort: 8080 }],
      livenessProbe: { httpGet: { path: '/live', port: 'http' }, periodSeconds: 7, failureThreshold: 2 } }]));
    assert.deepEqual(app(out).livenessProbe, { ...agent('/app-health/app/livez'), periodSeconds: 7, failureThreshold: 2 });
    assert.equal(proberText(out), '{"/app-health/app/livez":{"httpGet":{"path":"/live","port":8080}}}');
  });

  test('tcpSocket becomes an httpGet to the agent; the original stays a tcpSocket', () => {
    const out = inject(podText([{ name: 'app', image: 'a', readinessProbe: { tcpSocket: { port: 5432 }, initialDelaySeconds: 3 } }]));
    assert.deepEqual(app(out).readinessProbe, { ...agent('/app-health/app/readyz'), initialDelaySeconds: 3 });
    assert.deepEqual(probers(out), { '/app-health/app/readyz': { tcpSocket: { port: 5432 } } });
  });

  test('grpc: service null when unset, timeoutSeconds recorded (and kept on the probe)', () => {
    const out = inject(podText([{ name: 'app', image: 'a',
      startupProbe: { grpc: { port: 9090, service: 'health' }, timeoutSeconds: 10, failureThreshold: 30 },
      livenessProbe: { grpc: { port: 9091 } } }]));
    assert.deepEqual(app(out).startupProbe, { ...agent('/app-health/app/startupz'), timeoutSeconds: 10, failureThreshold: 30 });
    assert.deepEqual(app(out).livenessProbe, agent('/app-health/app/livez'));
    assert.equal(proberText(out),
      '{"/app-health/app/livez":{"grpc":{"port":9091,"service":null}},"/app-health/app/startupz":{"grpc":{"port":9090,"service":"health"},"timeoutSeconds":10}}');
  });

  test('exec probes are untouched; no env when nothing is rewritten', () => {
    const exec = { exec: { command: ['cat', '/tmp/healthy'] }, periodSeconds: 5 };
    const out = inject(podText([{ name: 'app', image: 'a', readinessProbe: exec, lifecycle: { preStop: { exec: { command: ['sleep', '5'] } } } }]));
    assert.deepEqual(app(out).readinessProbe, exec);
    assert.deepEqual(app(out).lifecycle, { preStop: { exec: { command: ['sleep', '5'] } } });
    assert.equal(probers(out), undefined);
  });

  test('HTTPS becomes HTTP (the agent does the TLS); headers stay; host only in the original; Go field order', () => {
    const out = inject(podText([{ name: 'app', image: 'a', readinessProbe: {
      httpGet: { scheme: 'HTTPS', port: 8443, host: 'app.local', path: '/ready', httpHeaders: [{ name: 'X-Probe', value: 'kubelet' }] },
      timeoutSeconds: 2 } }]));
    assert.deepEqual(app(out).readinessProbe, {
      httpGet: { path: '/app-health/app/readyz', port: 15020, scheme: 'HTTP', httpHeaders: [{ name: 'X-Probe', value: 'kubelet' }] }, timeoutSeconds: 2 });
    assert.equal(proberText(out),
      '{"/app-health/app/readyz":{"httpGet":{"path":"/ready","port":8443,"host":"app.local","scheme":"HTTPS","httpHeaders":[{"name":"X-Probe","value":"kubelet"}]},"timeoutSeconds":2}}');
  });

  test('the JSON escapes &, < and > as Go does', () => {
    const out = inject(podText([{ name: 'app', image: 'a', livenessProbe: { httpGet: { path: '/h?a=1&b=<2>', port: 80 } } }]));
    assert.equal(proberText(out), '{"/app-health/app/livez":{"httpGet":{"path":"/h?a=1\\u0026b=\\u003c2\\u003e","port":80}}}');
  });

  test('left alone: an unknown named port (kubelet reports it) and a probe already on the status port', () => {
    const unknown = { httpGet: { path: '/', port: 'nope' } };
    const own = { httpGet: { path: '/healthz/ready', port: 15020 } };
    const out = inject(podText([{ name: 'app', image: 'a', livenessProbe: unknown, readinessProbe: own }]));
    assert.deepEqual(app(out).livenessProbe, unknown);
    assert.deepEqual(app(out).readinessProbe, own);
    assert.equal(probers(out), undefined);
  });

  test('a port written as digits in a string is a number to kubelet', () => {
    const out = inject(podText([{ name: 'app', image: 'a', livenessProbe: { tcpSocket: { port: '7070' } } }]));
    assert.deepEqual(probers(out), { '/app-health/app/livez': { tcpSocket: { port: 7070 } } });
  });
});

describe('lifecycle hooks and init containers', () => {
  test('preStop httpGet and postStart tcpSocket go through /app-lifecycle, without timeoutSeconds', () => {
    const out = inject(podText([{ name: 'web', image: 'a', ports: [{ name: 'admin', containerPort: 9000 }],
      lifecycle: { preStop: { httpGet: { path: '/drain', port: 'admin' } }, postStart: { tcpSocket: { port: 93 } } } }]));
    assert.deepEqual(app(out, 'web').lifecycle, {
      preStop: agent('/app-lifecycle/web/prestopz'),
      postStart: agent('/app-lifecycle/web/poststartz'),
    });
    assert.equal(proberText(out),
      '{"/app-lifecycle/web/poststartz":{"tcpSocket":{"port":93}},"/app-lifecycle/web/prestopz":{"httpGet":{"path":"/drain","port":9000}}}');
  });

  for (const native of [true, false]) {
    test(`init containers (a native sidecar and a plain one) are rewritten too, ${native ? 'native' : 'legacy'} layout`, () => {
      const inits = [
        { name: 'side', image: 's', restartPolicy: 'Always', readinessProbe: { httpGet: { port: 3333 } } },
        { name: 'setup', image: 's', startupProbe: { tcpSocket: { port: 1 } } },
      ];
      const out = inject(podText([{ name: 'app', image: 'a' }], {}, inits), { ...DEFAULT_SETTINGS, nativeSidecars: native });
      assert.deepEqual(app(out, 'side').readinessProbe, agent('/app-health/side/readyz'));
      assert.deepEqual(app(out, 'setup').startupProbe, agent('/app-health/setup/startupz'));
      assert.deepEqual(probers(out), {
        '/app-health/setup/startupz': { tcpSocket: { port: 1 } },
        '/app-health/side/readyz': { httpGet: { port: 3333 } },
      });
    });
  }

  test("the user's own istio-proxy keeps its probes; the env var comes last in the proxy env", () => {
    const out = inject(podText([
      { name: 'app', image: 'a', livenessProbe: { httpGet: { port: 80 } } },
      { name: 'istio-proxy', image: 'auto', livenessProbe: { httpGet: { path: '/own', port: 15021 } } },
    ], { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9102' }));
    const proxy = proxyOf(parse(out).spec);
    assert.deepEqual(proxy.livenessProbe, { httpGet: { path: '/own', port: 15021 } });
    const env = (proxy.env as { name: string }[]).map((e) => e.name);
    assert.deepEqual(env.slice(-2), ['ISTIO_PROMETHEUS_ANNOTATIONS', 'ISTIO_KUBE_APP_PROBERS']);
  });
});

describe('switches', () => {
  const probed = (annotations: Record<string, string> = {}) =>
    podText([{ name: 'app', image: 'a', livenessProbe: { httpGet: { path: '/l', port: 80 } } }], annotations);

  test('annotation "false" opts out: probes untouched, no env', () => {
    const out = inject(probed({ 'sidecar.istio.io/rewriteAppHTTPProbers': 'false' }));
    assert.deepEqual(app(out).livenessProbe, { httpGet: { path: '/l', port: 80 } });
    assert.equal(probers(out), undefined);
  });

  test('install setting off (--rewrite-app-probes=false), annotation "true" opts back in', () => {
    const off = settingsFromOptions({ 'rewrite-app-probes': 'false' });
    assert.equal(off.rewriteAppProbes, false);
    assert.equal(probers(inject(probed(), off)), undefined);
    assert.ok(probers(inject(probed({ 'sidecar.istio.io/rewriteAppHTTPProbers': 'true' }), off)));
    assert.throws(() => settingsFromOptions({ 'rewrite-app-probes': 'maybe' }), /--rewrite-app-probes/);
  });

  for (const value of ['yes', 'off', '']) {
    test(`invalid annotation value ${JSON.stringify(value)} is rejected, naming annotation and value`, () => {
      assert.throws(() => inject(probed({ 'sidecar.istio.io/rewriteAppHTTPProbers': value })), (error: unknown) =>
        error instanceof ConfigError && error.message.includes('sidecar.istio.io/rewriteAppHTTPProbers') &&
        error.message.includes(`: "${value}":`) && !error.message.includes('\n'));
    });
  }

  test('status port 0 (no agent status server): nothing rewritten, no proxy probes, as Istio', () => {
    const out = inject(probed({ 'status.sidecar.istio.io/port': '0' }));
    assert.deepEqual(app(out).livenessProbe, { httpGet: { path: '/l', port: 80 } });
    assert.equal(probers(out), undefined);
    assert.equal(proxyOf(parse(out).spec).readinessProbe, undefined);
    const fromSettings = inject(probed(), { ...DEFAULT_SETTINGS, statusPort: 0 });
    assert.equal(probers(fromSettings), undefined);
  });

  test('the status port annotation is the agent port the probes go to', () => {
    const out = inject(probed({ 'status.sidecar.istio.io/port': '15999' }));
    assert.deepEqual(app(out).livenessProbe, agent('/app-health/app/livez', 15999));
  });

  test('interception mode does not matter (Istio rewrites with NONE and TPROXY too)', () => {
    for (const mode of ['NONE', 'TPROXY']) {
      assert.ok(probers(inject(probed({ 'sidecar.istio.io/interceptionMode': mode }))), mode);
    }
  });
});

describe('re-injection', () => {
  const rich = podText([
    { name: 'app', image: 'a', ports: [{ name: 'http', containerPort: 8080 }],
      livenessProbe: { httpGet: { path: '/l', port: 'http', scheme: 'HTTPS', host: 'h' }, timeoutSeconds: 3 },
      readinessProbe: { tcpSocket: { port: 'http' } },
      startupProbe: { grpc: { port: 9090 } },
      lifecycle: { preStop: { httpGet: { path: '/stop', port: 8080 } }, postStart: { tcpSocket: { port: 8080 } } } },
  ], {}, [{ name: 'side', image: 's', restartPolicy: 'Always', readinessProbe: { httpGet: { port: 3333 } } }]);

  for (const settings of [DEFAULT_SETTINGS, { ...DEFAULT_SETTINGS, nativeSidecars: false }]) {
    test(`injecting twice gives the same text (${settings.nativeSidecars ? 'native' : 'legacy'})`, () => {
      const once = inject(rich, settings);
      assert.equal(Object.keys(probers(once)!).length, 6);
      assert.equal(inject(once, settings), once);
    });
  }

  test('a layout switch on re-injection carries the originals over', () => {
    const once = inject(rich);
    const legacy = inject(once, { ...DEFAULT_SETTINGS, nativeSidecars: false });
    assert.equal(proberText(legacy), proberText(once));
    // The same pod; the text may differ in YAML style only, where the switch moved a container and it was re-rendered.
    assert.deepEqual(parse(inject(legacy)), parse(once));
  });

  test('a container added after injection gets its probe rewritten and merged in', () => {
    const once = parse(inject(rich)) as unknown as { spec: PodSpec };
    once.spec.containers.push({ name: 'new', image: 'n', livenessProbe: { httpGet: { path: '/testLive', port: 8008 } } });
    const again = inject(JSON.stringify(once));
    assert.deepEqual(app(again, 'new').livenessProbe, agent('/app-health/new/livez'));
    assert.deepEqual((probers(again) as Record<string, unknown>)['/app-health/new/livez'], { httpGet: { path: '/testLive', port: 8008 } });
    assert.equal(Object.keys(probers(again)!).length, 7);
  });

  test('opting out after injection puts the original probes back (named ports as numbers)', () => {
    const once = parse(inject(rich));
    (once.metadata.annotations as Record<string, string>)['sidecar.istio.io/rewriteAppHTTPProbers'] = 'false';
    const out = inject(JSON.stringify(once));
    assert.deepEqual(app(out).livenessProbe, { httpGet: { path: '/l', port: 8080, host: 'h', scheme: 'HTTPS' }, timeoutSeconds: 3 });
    assert.deepEqual(app(out).readinessProbe, { tcpSocket: { port: 8080 } });
    assert.deepEqual(app(out).startupProbe, { grpc: { port: 9090 } });
    assert.deepEqual(app(out).lifecycle, { preStop: { httpGet: { path: '/stop', port: 8080 } }, postStart: { tcpSocket: { port: 8080 } } });
    assert.deepEqual(app(out, 'side').readinessProbe, { httpGet: { port: 3333 } });
    assert.equal(probers(out), undefined);
  });

  test('a status port change after injection re-targets the probes', () => {
    const once = parse(inject(rich));
    (once.metadata.annotations as Record<string, string>)['status.sidecar.istio.io/port'] = '15999';
    const out = inject(JSON.stringify(once));
    assert.deepEqual(app(out).readinessProbe, agent('/app-health/app/readyz', 15999));
    assert.equal(proberText(out), proberText(inject(rich)));
  });

  test('an unreadable ISTIO_KUBE_APP_PROBERS in the injected proxy is refused, not silently dropped', () => {
    const once = inject(rich).replace(/value: '\{"\/app-health[^']*'/, "value: 'not json'");
    assert.throws(() => inject(once), (error: unknown) => error instanceof ConfigError && error.message.includes('ISTIO_KUBE_APP_PROBERS'));
  });
});

describe('webhook', () => {
  test('the AdmissionReview patch gives the pod meshcap inject gives; re-review gives no patch', () => {
    const text = podText([
      { name: 'app', image: 'a', ports: [{ name: 'http', containerPort: 8080 }],
        livenessProbe: { httpGet: { path: '/l', port: 'http' } }, readinessProbe: { tcpSocket: { port: 8080 } },
        lifecycle: { preStop: { httpGet: { path: '/stop', port: 8080 } } } },
      { name: 'other', image: 'o', startupProbe: { grpc: { port: 9090 } }, readinessProbe: { exec: { command: ['true'] } } },
    ], {}, [{ name: 'side', image: 's', restartPolicy: 'Always', readinessProbe: { httpGet: { port: 3333, scheme: 'HTTPS' } } }]);
    const pod = JSON.parse(text) as JsonObject;
    const review = (object: JsonObject) => JSON.stringify(admissionReview(object));
    const response = responseOf(answerReview(review(pod), DEFAULT_SETTINGS).body);
    assert.equal(response.allowed, true);
    const patched = applyPatch(pod, patchOf(response));
    const viaCli = parse(inject(text));
    assert.deepEqual(patched.spec, viaCli.spec);
    assert.ok(probers(inject(text)));
    const again = responseOf(answerReview(review(patched), DEFAULT_SETTINGS).body);
    assert.equal(again.allowed, true);
    assert.equal(again.patch, undefined);
  });
});
