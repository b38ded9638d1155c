/**
 * npm run bench:webhook: throughput and latency of `meshcap webhook` POST /inject
 * against a bare node:https server answering a fixed AdmissionReview, in the
 * same run, each in its own process, loaded from this process at concurrency 32
 * over keep-alive connections for BENCH_SECONDS (default 10) each, 127.0.0.1 only.
 * Goal: at least half the bare throughput, p99 under 10 ms.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../test/helpers/paths.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONCURRENCY = 32;

/** A pod as a Deployment's ReplicaSet creates it: two containers, probes, annotations, owner, managedFields. */
function realisticReview(): string {
  const container = (name: string, port: number) => ({
    name,
    image: `registry.example/team/${name}:1.4.2`,
    ports: [{ name: 'http', containerPort: port, protocol: 'TCP' }],
    env: Array.from({ length: 8 }, (_, i) => ({ name: `SETTING_${i}`, value: `value-${i}` })),
    resources: { requests: { cpu: '250m', memory: '256Mi' }, limits: { cpu: '1', memory: '512Mi' } },
    livenessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 10 },
    readinessProbe: { httpGet: { path: '/ready', port }, periodSeconds: 5 },
    volumeMounts: [{ name: 'config', mountPath: '/etc/app' }],
    terminationMessagePath: '/dev/termination-log',
    terminationMessagePolicy: 'File',
    imagePullPolicy: 'IfNotPresent',
  });
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName: 'checkout-7d4b9c8f6d-',
      namespace: 'shop',
      labels: { app: 'checkout', version: 'v3', 'pod-template-hash': '7d4b9c8f6d', 'app.kubernetes.io/part-of': 'shop' },
      annotations: {
        'traffic.sidecar.istio.io/excludeOutboundIPRanges': '169.254.169.254/32',
        'traffic.sidecar.istio.io/excludeInboundPorts': '9090',
        'prometheus.io/scrape': 'true',
        'prometheus.io/port': '9090',
      },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'checkout-7d4b9c8f6d', uid: '6f1c2f7e-2b0a-4c1e-9d1e-0d7a9c3b1f00', controller: true, blockOwnerDeletion: true }],
      managedFields: [{ manager: 'kube-controller-manager', operation: 'Update', apiVersion: 'v1', fieldsType: 'FieldsV1', fieldsV1: { 'f:metadata': { 'f:generateName': {}, 'f:labels': {} } } }],
    },
    spec: {
      serviceAccountName: 'checkout',
      containers: [container('checkout', 8080), container('cache', 6379)],
      volumes: [{ name: 'config', configMap: { name: 'checkout-config' } }],
      restartPolicy: 'Always',
      terminationGracePeriodSeconds: 30,
      dnsPolicy: 'ClusterFirst',
    },
  };
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: '0a1b2c3d-4e5f-6789-abcd-ef0123456789',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      requestKind: { group: '', version: 'v1', kind: 'Pod' },
      requestResource: { group: '', version: 'v1', resource: 'pods' },
      namespace: 'shop',
      operation: 'CREATE',
      userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller', groups: ['system:serviceaccounts', 'system:authenticated'] },
      object: pod,
      oldObject: null,
      dryRun: false,
      options: { kind: 'CreateOptions', apiVersion: 'meta.k8s.io/v1' },
    },
  });
}

function startServer(args: readonly string[]): Promise<{ child: ChildProcess; port: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let buffered = '';
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString();
      const match = /"msg":"listening".*?"port":(\d+)/.exec(buffered);
      if (match) {
        child.stderr!.off('data', onData);
        child.stderr!.resume();
        resolve({ child, port: Number(match[1]) });
      }
    };
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`server exited (${code}) before listening: ${buffered}`)));
  });
}

function post(agent: Agent, port: number, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method: 'POST', path: '/inject', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

interface Result {
  readonly requests: number;
  readonly seconds: number;
  readonly latenciesMs: Float64Array;
  readonly failures: number;
}

async function load(port: number, body: string, seconds: number): Promise<Result> {
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY, rejectUnauthorized: false });
  const latencies: number[] = [];
  let failures = 0;
  const start = process.hrtime.bigint();
  const end = start + BigInt(Math.round(seconds * 1e9));
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (process.hrtime.bigint() < end) {
        const t0 = process.hrtime.bigint();
        const status = await post(agent, port, body);
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
        if (status !== 200) failures++;
      }
    }),
  );
  agent.destroy();
  return { requests: latencies.length, seconds: Number(process.hrtime.bigint() - start) / 1e9, latenciesMs: Float64Array.from(latencies).sort(), failures };
}

const percentile = (sorted: Float64Array, p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'meshcap-bench-'));
  const cert = join(dir, 'tls.crt');
  const key = join(dir, 'tls.key');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert,
    '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  const body = realisticReview();

  // BENCH_NODE_OPTIONS (e.g. --cpu-prof) is passed to the meshcap server's node, for profiling.
  const nodeOptions = (process.env.BENCH_NODE_OPTIONS ?? '').split(' ').filter(Boolean);
  const meshcapArgs = [...nodeOptions, join(REPO_ROOT, 'bin', 'meshcap'), 'webhook', '--tls-cert', cert, '--tls-key', key,
    '--address', '127.0.0.1', '--port', '0', '--quiet', '--shutdown-delay', '0'];
  const meshcap = await startServer(meshcapArgs);
  // Every request of a fixed-body bench is a cache hit; this second server shows the engine's own cost.
  const uncached = await startServer([...meshcapArgs, '--cache-size', '0']);
  // The bare server answers with meshcap's own answer, so both send the same bytes back.
  const sample = await new Promise<string>((resolve, reject) => {
    const agent = new Agent({ rejectUnauthorized: false });
    const req = request({ host: '127.0.0.1', port: meshcap.port, method: 'POST', path: '/inject', agent, headers: { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks).toString()));
    });
    req.on('error', reject);
    req.end(body);
  });
  if (!JSON.parse(sample).response?.patch) throw new Error(`meshcap did not inject the bench pod: ${sample}`);
  const answerFile = join(dir, 'answer.json');
  writeFileSync(answerFile, sample);
  const bare = await startServer([join(REPO_ROOT, 'dist', 'bench', 'bare-server.js'), cert, key, answerFile]);

  try {
    // Warm-up: JIT, TLS session setup and connection pools for both.
    await load(bare.port, body, 1);
    await load(meshcap.port, body, 1);
    await load(uncached.port, body, 1);
    const results = {
      bare: await load(bare.port, body, SECONDS),
      meshcap: await load(meshcap.port, body, SECONDS),
      uncached: await load(uncached.port, body, SECONDS),
    };
    const row = (name: string, r: Result) =>
      `${name.padEnd(22)} ${(r.requests / r.seconds).toFixed(0).padStart(7)} req/s   p50 ${percentile(r.latenciesMs, 50).toFixed(2).padStart(6)} ms   p99 ${percentile(r.latenciesMs, 99).toFixed(2).padStart(6)} ms   non-200: ${r.failures}`;
    const ratio = results.meshcap.requests / results.meshcap.seconds / (results.bare.requests / results.bare.seconds);
    const p99 = percentile(results.meshcap.latenciesMs, 99);
    console.log(`webhook bench: concurrency ${CONCURRENCY}, ${SECONDS} s each, keep-alive HTTPS on 127.0.0.1, AdmissionReview ${Buffer.byteLength(body)} bytes, answer ${sample.length} bytes`);
    console.log(row('bare node:https', results.bare));
    console.log(row('meshcap webhook', results.meshcap));
    console.log(row('  --cache-size 0', results.uncached));
    console.log(`throughput ratio ${ratio.toFixed(2)} (goal >= 0.50), meshcap p99 ${p99.toFixed(2)} ms (goal < 10 ms): ${ratio >= 0.5 && p99 < 10 ? 'met' : 'NOT met'}`);
    const uncachedRatio = results.uncached.requests / results.uncached.seconds / (results.bare.requests / results.bare.seconds);
    console.log(`without the answer cache (every pod distinct): ratio ${uncachedRatio.toFixed(2)}, p99 ${percentile(results.uncached.latenciesMs, 99).toFixed(2)} ms`);
  } finally {
    uncached.child.kill('SIGTERM');
    meshcap.child.kill('SIGTERM');
    bare.child.kill('SIGTERM');
  }
}

await main();
