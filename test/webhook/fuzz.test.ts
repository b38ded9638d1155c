/**
 * Bounded fuzz of hostile bodies against a live webhook: random bytes, broken
 * and deeply nested JSON, reviews whose every field has the wrong type, huge
 * strings and prototype-pollution keys. Every request must get a proper status
 * (never 500, never a hang) and the server must stay healthy. Deterministic
 * seed; 400 requests; each bounded by a client timeout.
 */
import assert from 'node:assert/strict';
import { Agent } from 'node:https';
import { after, before, test } from 'node:test';
import { DEFAULT_SETTINGS } from '../../src/inject/settings.js';
import { type Webhook, startWebhook } from '../../src/webhook/server.js';
import { send } from '../helpers/https.js';
import { makeCert } from '../helpers/tls.js';

let webhook: Webhook;
let port: number;
const agent = new Agent({ keepAlive: true, maxSockets: 8, rejectUnauthorized: false });

before(async () => {
  const cert = makeCert();
  webhook = startWebhook({
    certFile: cert.certFile, keyFile: cert.keyFile, host: '127.0.0.1', port: 0, settings: DEFAULT_SETTINGS,
    maxBodyBytes: 256 * 1024, requestTimeoutMs: 2000, certPollMs: 60_000, logRequests: false, log: () => {},
  });
  ({ port } = await webhook.listening);
});
after(async () => {
  agent.destroy();
  await webhook.shutdown(1000);
});

/** mulberry32: a tiny deterministic generator so a failure reproduces. */
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WEIRD: unknown[] = [null, true, 0, -1, 1e308, '', 'x'.repeat(5000), [], {}, [[[]]], '../../etc/passwd', '\u0000', '*', '-1', 'NaN'];

/**
 * Prototype-pollution attempts, written as raw text: a `__proto__` key in an
 * object literal would set the literal's prototype and JSON.stringify would
 * drop it, so the key would never reach the server.
 */
const POLLUTE = '{"polluted":1,"image":"evil","constructor":{"prototype":{"polluted":1}}}';
const pollutionBodies = [
  `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","__proto__":${POLLUTE},"request":{"uid":"u","__proto__":${POLLUTE},` +
    `"kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE","object":{"__proto__":${POLLUTE},` +
    `"metadata":{"name":"p","__proto__":${POLLUTE},"labels":{"__proto__":${POLLUTE}},"annotations":{"__proto__":${POLLUTE},"constructor":${POLLUTE}}},` +
    `"spec":{"__proto__":${POLLUTE},"containers":[{"name":"app","image":"a","__proto__":${POLLUTE},"ports":[{"containerPort":80,"__proto__":${POLLUTE}}]},` +
    `{"name":"istio-proxy","image":"auto","__proto__":${POLLUTE},"env":[{"name":"X","__proto__":${POLLUTE}}],"securityContext":{"__proto__":${POLLUTE}}}]}}}}`,
  `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","object":{"metadata":{"annotations":{"proxy.istio.io/config":"__proto__: {polluted: 1}\nproxyMetadata: {__proto__: {polluted: 1}}"}},"spec":{"containers":[{"name":"a"}]}}}}`,
  `{"constructor":{"prototype":{"polluted":1}},"__proto__":{"polluted":1}}`,
];

function hostileBodies(random: () => number): (string | Buffer)[] {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  const base = () => ({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'u',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      operation: 'CREATE',
      namespace: 'ns',
      object: {
        metadata: { name: 'p', labels: { app: 'a' }, annotations: { 'traffic.sidecar.istio.io/includeInboundPorts': '80' } },
        spec: { containers: [{ name: 'app', image: 'i', ports: [{ containerPort: 80 }] }], initContainers: [], volumes: [] },
      },
    },
  });
  const paths = [
    ['request'], ['request', 'uid'], ['request', 'object'], ['request', 'object', 'metadata'], ['request', 'object', 'spec'],
    ['request', 'object', 'metadata', 'labels'], ['request', 'object', 'metadata', 'annotations'],
    ['request', 'object', 'spec', 'containers'], ['request', 'object', 'spec', 'initContainers'], ['request', 'object', 'spec', 'volumes'],
    ['request', 'object', 'spec', 'hostNetwork'], ['request', 'object', 'metadata', 'ownerReferences'], ['request', 'kind'], ['request', 'operation'],
    ['request', 'object', 'metadata', 'annotations', 'sidecar.istio.io/status'], ['request', 'object', 'metadata', 'annotations', 'proxy.istio.io/config'],
    ['request', 'object', 'metadata', 'annotations', 'proxy.istio.io/overrides'], ['request', 'object', 'spec', 'containers', '0'],
    ['request', 'object', 'spec', 'containers', '0', 'ports'], ['request', 'object', 'metadata', 'annotations', 'sidecar.istio.io/interceptionMode'],
  ];
  const bodies: (string | Buffer)[] = [];
  for (let i = 0; i < 300; i++) {
    const review = base() as Record<string, unknown>;
    for (let k = 0; k < 1 + Math.floor(random() * 3); k++) {
      const path = pick(paths);
      let node = review as Record<string, unknown>;
      for (const token of path.slice(0, -1)) {
        const next = node[token];
        if (next === null || typeof next !== 'object') break;
        node = next as Record<string, unknown>;
      }
      node[path.at(-1)!] = pick(WEIRD);
    }
    bodies.push(JSON.stringify(review));
  }
  bodies.push(
    ...pollutionBodies,
    '[', '{"a":', '"\\ud800"', 'null', '[]', '1', '"review"', '{}',
    '['.repeat(100_000), '{"a":'.repeat(50_000), `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":${'['.repeat(5000)}`,
    JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u', object: { metadata: { annotations: { 'sidecar.istio.io/status': '{"initContainers":"x"}' } }, spec: {} } } }),
    JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u', object: { metadata: { annotations: { 'proxy.istio.io/config': 'a: &a [*a]' } }, spec: {} } } }),
    JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u', object: { metadata: {}, spec: { containers: Array.from({ length: 2000 }, (_, n) => ({ name: `c${n}` })) } } } }),
  );
  for (let i = 0; i < 80; i++) {
    bodies.push(Buffer.from(Array.from({ length: Math.floor(random() * 2000) }, () => Math.floor(random() * 256))));
  }
  return bodies;
}

test('hostile bodies: proper status codes, no crash, no hang', { timeout: 120_000 }, async () => {
  const bodies = hostileBodies(rng(0x5eed));
  const counts = new Map<number, number>();
  // A few at a time over keep-alive connections: closer to an API server than one socket per request.
  for (let i = 0; i < bodies.length; i += 8) {
    const replies = await Promise.all(bodies.slice(i, i + 8).map((body) => send(port, { body, agent, timeoutMs: 5000 })));
    for (const [k, reply] of replies.entries()) {
      counts.set(reply.status, (counts.get(reply.status) ?? 0) + 1);
      assert.ok([200, 400, 413].includes(reply.status), `body #${i + k} got ${reply.status}: ${reply.body.slice(0, 200)}`);
      const parsed = JSON.parse(reply.body) as Record<string, unknown>;
      if (reply.status === 200) assert.equal(parsed.kind, 'AdmissionReview');
      else assert.equal(typeof parsed.error, 'string');
    }
  }
  assert.equal((await send(port, { method: 'GET', path: '/healthz', timeoutMs: 2000 })).status, 200);
  // The server runs in this process: a polluted Object.prototype would show here.
  assert.ok(({} as Record<string, unknown>).polluted === undefined && ({} as Record<string, unknown>).image === undefined, 'no prototype pollution');
  console.log(`fuzz: ${bodies.length} bodies, status counts ${JSON.stringify(Object.fromEntries(counts))}`);
});

// The API server gives the webhook 5 s (deploy/mutatingwebhook.yaml); quadratic work on long lists once took 25 s here.
test('long lists (20 000 pod volumes, user volumes and proxyMetadata entries) are answered within the webhook timeout', { timeout: 5000 }, async () => {
  const { answerReview } = await import('../../src/webhook/admission.js');
  const count = 20_000;
  const userVolume = JSON.stringify(Object.fromEntries(Array.from({ length: count }, (_, i) => [`u${i}`, { emptyDir: {} }])));
  const pod = {
    metadata: {
      name: 'p',
      annotations: {
        'sidecar.istio.io/userVolume': userVolume,
        'proxy.istio.io/config': JSON.stringify({ proxyMetadata: Object.fromEntries(Array.from({ length: count }, (_, i) => [`META_${i}`, 'v'])) }),
      },
    },
    spec: { containers: [{ name: 'a', image: 'a' }], volumes: Array.from({ length: count }, (_, i) => ({ name: `v${i}`, emptyDir: {} })) },
  };
  const answer = answerReview(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u', object: pod } }), DEFAULT_SETTINGS);
  assert.equal(answer.outcome, 'injected', answer.message);
});
