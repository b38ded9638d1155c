/**
 * The webhook over real HTTPS on 127.0.0.1: AdmissionReviews built from Istio's
 * anchor inputs (pods as their controllers would create them), patches applied
 * with fast-json-patch (an RFC 6902 library independent of meshcap, validating
 * every op) must give the same pod as `meshcap
 * inject`; skip, deny, limits, routes, certificate reload, graceful shutdown.
 */
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import YAML from 'yaml';
import { type JsonObject, asObject, isObject } from '../../src/inject/json.js';
import { injectManifests } from '../../src/inject/manifest.js';
import { DEFAULT_SETTINGS, type InjectSettings } from '../../src/inject/settings.js';
import { isList, locatePod } from '../../src/inject/workloads.js';
import { startWebhook } from '../../src/webhook/server.js';
import { FIXTURE_CASES, INJECT_CASES, ISTIO_LIKE } from '../golden/inject-cases.js';
import { dirOf, podsOf } from '../golden/inject-compare.js';
import { admissionReview as review, applyPatch, patchOf } from '../helpers/admission.js';
import { send } from '../helpers/https.js';
import { anchorsOrSkip } from '../helpers/paths.js';
import { makeCert } from '../helpers/tls.js';

const anchors = anchorsOrSkip();


/** The Pods controllers would create from a manifest's workloads, with owner references as they set them. */
export function podsFromManifest(text: string): JsonObject[] {
  const pods: JsonObject[] = [];
  for (const doc of YAML.parseAllDocuments(text)) {
    const object: unknown = doc.toJS();
    for (const item of isList(object) ? object.items : [object]) {
      const located = locatePod(item);
      if (!located || !isObject(item)) continue;
      const { workload } = located.target;
      const metadata: JsonObject = structuredClone(located.target.metadata);
      metadata.namespace = 'default';
      const labels = (metadata.labels = { ...(asObject(metadata.labels) ?? {}) });
      let owner: JsonObject | undefined = { apiVersion: workload.apiVersion, kind: workload.kind, name: workload.name, controller: true, uid: 'owner' };
      if (workload.kind === 'Pod') {
        owner = undefined;
        metadata.name = workload.name;
      } else if (workload.kind === 'Deployment') {
        owner = { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `${workload.name}-fake`, controller: true, uid: 'owner' };
        labels['pod-template-hash'] = 'fake';
        metadata.generateName = `${workload.name}-fake-`;
      } else if (workload.kind === 'CronJob') {
        owner = { apiVersion: 'batch/v1', kind: 'Job', name: `${workload.name}-29000000`, controller: true, uid: 'owner' };
        metadata.generateName = `${workload.name}-29000000-`;
      } else {
        metadata.generateName = `${workload.name}-`;
      }
      if (owner) metadata.ownerReferences = [owner];
      metadata.managedFields = [{ manager: 'kube-controller-manager', operation: 'Update' }];
      pods.push({ apiVersion: 'v1', kind: 'Pod', metadata, spec: structuredClone(located.target.spec) });
    }
  }
  return pods;
}

const SERVER_DEFAULTS = { host: '127.0.0.1', port: 0, maxBodyBytes: 1 << 20, requestTimeoutMs: 2000, certPollMs: 200, logRequests: false };

async function start(settings: InjectSettings, overrides: Partial<Parameters<typeof startWebhook>[0]> = {}) {
  const cert = makeCert();
  const logs: string[] = [];
  const webhook = startWebhook({
    ...SERVER_DEFAULTS,
    certFile: cert.certFile,
    keyFile: cert.keyFile,
    settings,
    log: (level, msg, fields) => logs.push(JSON.stringify({ level, msg, ...fields })),
    ...overrides,
  });
  const { port } = await webhook.listening;
  return { webhook, port, cert, logs };
}

const post = (port: number, body: unknown, ca?: string) => send(port, { body: typeof body === 'string' ? body : JSON.stringify(body), ca });

describe('webhook: anchors through AdmissionReview, same result as meshcap inject', { skip: anchors.available ? false : anchors.reason }, () => {
  let server: Awaited<ReturnType<typeof start>>;
  const servers = new Map<string, Awaited<ReturnType<typeof start>>>();
  before(async () => {
    server = await start(ISTIO_LIKE);
  });
  after(async () => {
    await server.webhook.shutdown(1000);
    for (const s of servers.values()) await s.webhook.shutdown(1000);
  });
  const serverFor = async (settings: Partial<InjectSettings> | undefined) => {
    if (!settings) return server;
    const key = JSON.stringify(settings);
    if (!servers.has(key)) servers.set(key, await start({ ...ISTIO_LIKE, ...settings }));
    return servers.get(key)!;
  };

  for (const c of [...INJECT_CASES, ...FIXTURE_CASES]) {
    test(`#${c.n} ${c.golden ?? c.input}${c.settings ? ` ${JSON.stringify(c.settings)}` : ''}`, async () => {
      const { port, cert } = await serverFor(c.settings);
      const input = readFileSync(join(dirOf(c), c.input), 'utf8');
      const pods = podsFromManifest(input);
      assert.ok(pods.length > 0);
      let expected: JsonObject[] = [];
      if (!c.error) expected = podsOf(injectManifests(input, { ...ISTIO_LIKE, ...c.settings }).text) as unknown as JsonObject[];
      for (const [i, pod] of pods.entries()) {
        const reply = await post(port, review(pod, `uid-${i}`), cert.cert);
        assert.equal(reply.status, 200, reply.body);
        const { response } = JSON.parse(reply.body) as { response: JsonObject };
        assert.equal(response.uid, `uid-${i}`);
        if (c.error) {
          assert.equal(response.allowed, false);
          const message = String(asObject(response.status)?.message);
          for (const part of c.error) assert.ok(message.includes(part), message);
          continue;
        }
        assert.equal(response.allowed, true);
        if (c.skipped) {
          assert.equal(response.patch, undefined, 'skipped pods get no patch');
          continue;
        }
        assert.equal(response.patchType, 'JSONPatch');
        const patched = applyPatch(pod, patchOf(response));
        const want = expected[i]!;
        assert.deepEqual(patched.spec, want.spec, 'patched pod spec equals meshcap inject');
        const meta = patched.metadata as JsonObject;
        const labels = { ...(meta.labels as JsonObject) };
        delete labels['pod-template-hash'];
        assert.deepEqual(labels, asObject(want.metadata)?.labels);
        assert.deepEqual(meta.annotations, asObject(want.metadata)?.annotations);

        // Reinvocation / re-review of the injected pod: nothing more to change.
        const again = await post(port, review(patched, `uid-again-${i}`), cert.cert);
        const second = (JSON.parse(again.body) as { response: JsonObject }).response;
        assert.equal(second.allowed, true);
        assert.equal(second.patch, undefined, 're-reviewing an injected pod yields no patch');
      }
    });
  }
});

describe('webhook: HTTP behaviour', () => {
  let s: Awaited<ReturnType<typeof start>>;
  const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'ns' }, spec: { containers: [{ name: 'app', image: 'app' }] } };
  before(async () => {
    s = await start(DEFAULT_SETTINGS);
  });
  after(async () => {
    await s.webhook.shutdown(1000);
  });

  test('health, readiness and metrics', async () => {
    assert.equal((await send(s.port, { method: 'GET', path: '/healthz' })).status, 200);
    assert.equal((await send(s.port, { method: 'GET', path: '/readyz' })).status, 200);
    await post(s.port, review(pod));
    const metrics = await send(s.port, { method: 'GET', path: '/metrics' });
    assert.equal(metrics.status, 200);
    assert.match(String(metrics.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    for (const name of ['meshcap_webhook_requests_total{path="/inject",code="200"}', 'meshcap_webhook_inject_duration_seconds_bucket{le="+Inf"}',
      'meshcap_webhook_injected_total 1', 'meshcap_webhook_skipped_total', 'meshcap_webhook_errors_total',
      'meshcap_webhook_answer_cache_hits_total']) {
      assert.ok(metrics.body.includes(name), `${name} in\n${metrics.body}`);
    }
  });

  test('meshcap defaults: meshcap init image, native sidecar, patch applies', async () => {
    const reply = await post(s.port, review(pod));
    const { response } = JSON.parse(reply.body) as { response: JsonObject };
    const patched = applyPatch(pod, patchOf(response));
    const init = (patched.spec as JsonObject).initContainers as JsonObject[];
    assert.deepEqual(init.map((c) => c.name), ['istio-init', 'istio-proxy']);
    assert.deepEqual(init[0]!.command, ['meshcap']);
    assert.equal(init[1]!.restartPolicy, 'Always');
  });

  test('opt-out, host network, not a pod, UPDATE: allowed without patch', async () => {
    const variants = [
      { ...pod, metadata: { ...pod.metadata, labels: { 'sidecar.istio.io/inject': 'false' } } },
      { ...pod, metadata: { ...pod.metadata, annotations: { 'sidecar.istio.io/inject': 'false' } } },
      { ...pod, spec: { ...pod.spec, hostNetwork: true } },
    ];
    for (const v of variants) {
      const r = JSON.parse((await post(s.port, review(v))).body).response;
      assert.equal(r.allowed, true);
      assert.equal(r.patch, undefined);
    }
    const update = review(pod);
    (update.request as JsonObject).operation = 'UPDATE';
    assert.equal(JSON.parse((await post(s.port, update)).body).response.patch, undefined);
  });

  test('invalid annotation: allowed false, message names annotation and value', async () => {
    const bad = { ...pod, metadata: { ...pod.metadata, annotations: { 'traffic.sidecar.istio.io/excludeInboundPorts': '80,http' } } };
    const r = JSON.parse((await post(s.port, review(bad))).body).response;
    assert.equal(r.allowed, false);
    assert.match(r.status.message, /traffic\.sidecar\.istio\.io\/excludeInboundPorts/);
    assert.match(r.status.message, /"80,http"/);
  });

  test('wrong content type 415, empty 400, garbage 400, wrong version 400, wrong method 405, unknown path 404, too large 413', async () => {
    assert.equal((await send(s.port, { headers: { 'content-type': 'text/plain' }, body: '{}' })).status, 415);
    assert.equal((await send(s.port, { body: '' })).status, 400);
    assert.equal((await send(s.port, { body: 'not json' })).status, 400);
    const v1beta1 = { ...review(pod), apiVersion: 'admission.k8s.io/v1beta1' };
    assert.equal((await post(s.port, v1beta1)).status, 400);
    assert.equal((await send(s.port, { method: 'GET' })).status, 405);
    assert.equal((await send(s.port, { path: '/nope' })).status, 404);
    assert.equal((await send(s.port, { body: Buffer.alloc((1 << 20) + 10, 0x20) })).status, 413);
  });

  test('a body that never completes gets 408 within the request timeout', async () => {
    const { request } = await import('node:https');
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: s.port, method: 'POST', path: '/inject', rejectUnauthorized: false,
        headers: { 'content-type': 'application/json', 'content-length': '1000' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.setTimeout(8000, () => req.destroy(new Error('no answer')));
      req.write('{"apiVersion":');
    });
    assert.equal(status, 408);
  });
});

describe('webhook: certificate reload and shutdown', () => {
  test('new certificate files are served without a restart', async () => {
    const s = await start(DEFAULT_SETTINGS, { certPollMs: 100 });
    try {
      const before = await send(s.port, { method: 'GET', path: '/healthz', ca: s.cert.cert });
      assert.equal(before.fingerprint, s.cert.fingerprint);
      const next = makeCert();
      copyFileSync(next.keyFile, s.cert.keyFile);
      copyFileSync(next.certFile, s.cert.certFile);
      const deadline = Date.now() + 5000;
      let seen: string | undefined = before.fingerprint;
      while (seen !== next.fingerprint && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        seen = (await send(s.port, { method: 'GET', path: '/healthz' })).fingerprint;
      }
      assert.equal(seen, next.fingerprint);
      // And the new certificate verifies against its own CA.
      assert.equal((await send(s.port, { method: 'GET', path: '/healthz', ca: next.cert })).status, 200);
      assert.match((await send(s.port, { method: 'GET', path: '/metrics' })).body, /meshcap_webhook_cert_reloads_total [1-9]/);
    } finally {
      await s.webhook.shutdown(1000);
    }
  });

  test('drain (SIGTERM, before the shutdown delay ends): readyz fails at once, requests are still answered', async () => {
    const s = await start(DEFAULT_SETTINGS);
    try {
      assert.equal((await send(s.port, { method: 'GET', path: '/readyz' })).status, 200);
      s.webhook.beginDrain();
      assert.equal((await send(s.port, { method: 'GET', path: '/readyz' })).status, 503);
      assert.equal((await send(s.port, { method: 'GET', path: '/healthz' })).status, 200);
      const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ name: 'a', image: 'a' }] } };
      const reply = await post(s.port, review(pod));
      assert.equal(reply.status, 200);
      assert.ok(JSON.parse(reply.body).response.patch, 'still injecting while endpoints drain');
    } finally {
      await s.webhook.shutdown(1000);
    }
  });

  test('connections that never handshake, or handshake and stay silent, are closed', async () => {
    const s = await start(DEFAULT_SETTINGS, { handshakeTimeoutMs: 300, idleSocketTimeoutMs: 300 });
    const { connect: tcpConnect } = await import('node:net');
    const { connect: tlsConnect } = await import('node:tls');
    const closedWithin = (socket: import('node:net').Socket, ms: number) =>
      new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), ms);
        socket.on('error', () => {});
        socket.once('close', () => {
          clearTimeout(timer);
          resolve(true);
        });
      });
    try {
      const raw = tcpConnect(s.port, '127.0.0.1');
      const silent = tlsConnect({ host: '127.0.0.1', port: s.port, rejectUnauthorized: false });
      await new Promise<void>((resolve, reject) => silent.once('secureConnect', () => resolve()).once('error', reject));
      // Bounded waits: far above the 300 ms limits, far below the defaults (10 s, 40 s).
      const [rawClosed, silentClosed] = await Promise.all([closedWithin(raw, 5000), closedWithin(silent, 5000)]);
      raw.destroy();
      silent.destroy();
      assert.deepEqual({ rawClosed, silentClosed }, { rawClosed: true, silentClosed: true });
    } finally {
      await s.webhook.shutdown(1000);
    }
  });

  test('shutdown: readiness fails, the in-flight request completes, then the port closes', async () => {
    const s = await start(DEFAULT_SETTINGS, { requestTimeoutMs: 5000 });
    const { request } = await import('node:https');
    const body = JSON.stringify(review({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ name: 'a', image: 'a' }] } }));
    // The server has the request (headers in, body not yet complete) when it emits 'request'.
    const received = new Promise<void>((resolve) => s.webhook.server.once('request', () => resolve()));
    const req = request({ host: '127.0.0.1', port: s.port, method: 'POST', path: '/inject', rejectUnauthorized: false, agent: false,
      headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } });
    const inflight = new Promise<number>((resolve, reject) => {
      req.on('response', (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
    });
    req.write(body.slice(0, 10));
    await received;
    const closed = s.webhook.shutdown(3000);
    // The rest of the body arrives only after shutdown began: the request must still complete.
    req.end(body.slice(10));
    assert.equal(await inflight, 200);
    await closed;
    await assert.rejects(send(s.port, { method: 'GET', path: '/healthz', timeoutMs: 1000 }));
  });
});

describe('meshcap webhook: option errors', () => {
  test('each bad option is named in one line, exit 2, before any certificate is read', async () => {
    const { runCli } = await import('../helpers/cli.js');
    const cases: [string[], RegExp][] = [
      [['--request-timeout', '0'], /invalid --request-timeout: "0".*give 1 to 300/],
      [['--cert-poll', '0'], /invalid --cert-poll: "0"/],
      [['--shutdown-delay', 'soon'], /invalid --shutdown-delay: "soon"/],
      [['--cache-size', 'many'], /invalid --cache-size: "many"/],
      [['--max-body-bytes', '10'], /invalid --max-body-bytes: "10"/],
    ];
    for (const [args, message] of cases) {
      const result = runCli(['webhook', '--tls-cert', '/nonexistent/tls.crt', '--tls-key', '/nonexistent/tls.key', ...args]);
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, message);
      assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
    }
    // A command line parseArgs refuses: its first sentence only, then where to find the usage.
    const unknown = runCli(['webhook', '--bogus']);
    assert.equal(unknown.code, 2);
    assert.deepEqual(unknown.stderr.trim().split('\n'), ["meshcap webhook: Unknown option '--bogus'", "Run 'meshcap webhook --help' for usage."]);
  });
});
