/**
 * npm run bench:webhook: throughput and latency of `meshcap webhook` POST /inject
 * against a bare node:https server answering a fixed AdmissionReview, in the
 * same run, each in its own process, loaded from this process at concurrency 32
 * over keep-alive connections for BENCH_SECONDS (default 10) each, 127.0.0.1 only.
 * Goal: at least half the bare throughput, p99 under 10 ms.
 *
 * Two meshcap runs: a scale-out (one ReplicaSet's pods, identical but for the
 * request uid, so answers are reused) and distinct pods (4096 workloads, more
 * than the answer cache holds, so every request runs the engine).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../test/helpers/paths.js';
import { realisticReview } from './review.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONCURRENCY = 32;
const VARIANTS = 4096;

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

/** CPU seconds (user + system) the process has used so far, from /proc (clock ticks are 100 Hz on Linux). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** The webhook's answer-cache hit counter, from its own /metrics. */
function cacheHits(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/metrics', rejectUnauthorized: false }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve(Number(/^meshcap_webhook_answer_cache_hits_total (\d+)$/m.exec(text)?.[1] ?? NaN)));
    });
    req.on('error', reject);
    req.end();
  });
}

interface Result {
  readonly requests: number;
  /** Server CPU per request, microseconds: what the server itself spends, whoever is the bottleneck. */
  readonly serverCpuUs: number;
  readonly seconds: number;
  readonly latenciesMs: Float64Array;
  readonly failures: number;
}

/** Bodies are sent round-robin, prepared beforehand so the load generator only sends. */
async function load(server: { child: ChildProcess; port: number }, bodies: readonly string[], seconds: number): Promise<Result> {
  const { port } = server;
  const cpuBefore = cpuSeconds(server.child.pid!);
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY, rejectUnauthorized: false });
  const latencies: number[] = [];
  let failures = 0;
  let next = 0;
  const start = process.hrtime.bigint();
  const end = start + BigInt(Math.round(seconds * 1e9));
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (process.hrtime.bigint() < end) {
        const t0 = process.hrtime.bigint();
        const status = await post(agent, port, bodies[next++ % bodies.length]!);
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
        if (status !== 200) failures++;
      }
    }),
  );
  agent.destroy();
  const serverCpuUs = ((cpuSeconds(server.child.pid!) - cpuBefore) * 1e6) / Math.max(1, latencies.length);
  return { requests: latencies.length, serverCpuUs, seconds: Number(process.hrtime.bigint() - start) / 1e9, latenciesMs: Float64Array.from(latencies).sort(), failures };
}

const percentile = (sorted: Float64Array, p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'meshcap-bench-'));
  const cert = join(dir, 'tls.crt');
  const key = join(dir, 'tls.key');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert,
    '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  const uid = (i: number) => `${i.toString(16).padStart(8, '0')}-4e5f-6789-abcd-ef0123456789`;
  // A scale-out: one ReplicaSet's pods, identical but for the request uid (the usual case; answers are reused).
  const replicas = Array.from({ length: VARIANTS }, (_, i) => realisticReview(0, uid(i)));
  // Pods of VARIANTS different workloads, more than the answer cache holds: every request runs the engine.
  const distinct = Array.from({ length: VARIANTS }, (_, i) => realisticReview(i + 1, uid(i)));
  const body = replicas[0]!;

  // BENCH_NODE_OPTIONS (e.g. --cpu-prof) is passed to the meshcap server's node, for profiling.
  const nodeOptions = (process.env.BENCH_NODE_OPTIONS ?? '').split(' ').filter(Boolean);
  const meshcapArgs = [...nodeOptions, join(REPO_ROOT, 'bin', 'meshcap'), 'webhook', '--tls-cert', cert, '--tls-key', key,
    '--address', '127.0.0.1', '--port', '0', '--quiet', '--shutdown-delay', '0',
    // BENCH_WEBHOOK_ARGS (e.g. --cache-size 0) adds webhook options, for experiments.
    ...(process.env.BENCH_WEBHOOK_ARGS ?? '').split(' ').filter(Boolean)];
  const meshcap = await startServer(meshcapArgs);
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
    await load(bare, replicas, 1);
    await load(meshcap, distinct, 1);
    const bareResult = await load(bare, replicas, SECONDS);
    const hits0 = await cacheHits(meshcap.port);
    const replicaResult = await load(meshcap, replicas, SECONDS);
    const hits1 = await cacheHits(meshcap.port);
    const distinctResult = await load(meshcap, distinct, SECONDS);
    const hits2 = await cacheHits(meshcap.port);
    const results = { bare: bareResult, meshcap: replicaResult, distinct: distinctResult };
    const reused = (hits: number, r: Result) => `${((100 * hits) / r.requests).toFixed(1)}% of answers reused`;
    const row = (name: string, r: Result) =>
      `${name.padEnd(22)} ${(r.requests / r.seconds).toFixed(0).padStart(7)} req/s   p50 ${percentile(r.latenciesMs, 50).toFixed(2).padStart(6)} ms   p99 ${percentile(r.latenciesMs, 99).toFixed(2).padStart(6)} ms   server CPU ${r.serverCpuUs.toFixed(0).padStart(4)} µs/req   non-200: ${r.failures}`;
    const ratio = results.meshcap.requests / results.meshcap.seconds / (results.bare.requests / results.bare.seconds);
    const p99 = percentile(results.meshcap.latenciesMs, 99);
    console.log(`webhook bench: concurrency ${CONCURRENCY}, ${SECONDS} s each, keep-alive HTTPS on 127.0.0.1, AdmissionReview ${Buffer.byteLength(body)} bytes, answer ${sample.length} bytes`);
    console.log(row('bare node:https', results.bare));
    console.log(`${row('meshcap, replicas', results.meshcap)}   ${reused(hits1 - hits0, results.meshcap)}`);
    console.log(`${row('meshcap, distinct pods', results.distinct)}   ${reused(hits2 - hits1, results.distinct)}`);
    console.log(`throughput ratio ${ratio.toFixed(2)} (goal >= 0.50), meshcap p99 ${p99.toFixed(2)} ms (goal < 10 ms): ${ratio >= 0.5 && p99 < 10 ? 'met' : 'NOT met'}`);
    const distinctRatio = results.distinct.requests / results.distinct.seconds / (results.bare.requests / results.bare.seconds);
    console.log(`every pod distinct (no answer reused): ratio ${distinctRatio.toFixed(2)}, p99 ${percentile(results.distinct.latenciesMs, 99).toFixed(2)} ms`);
  } finally {
    meshcap.child.kill('SIGTERM');
    bare.child.kill('SIGTERM');
  }
}

await main();
