/**
 * One node audit of 50 injected pods: 50 throwaway network namespaces, each
 * captured by meshcap the way istio-init would, then audited (read-only) and
 * audited with repair after one pod's nat table is flushed. Reports wall time
 * and CPU (this process plus every child it waited for: nsenter, the
 * iptables/nft tools), medians of several runs. Children get a clean
 * environment (PATH only). Needs root; every namespace is removed on exit.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { desiredCapture } from '../src/audit/desired.js';
import { auditNode } from '../src/audit/run.js';
import type { Sandbox } from '../src/audit/types.js';
import { realSystem } from '../src/backend/system.js';
import { silentLogger } from '../src/log.js';
import { MESHCAP_BIN } from '../test/helpers/paths.js';

const PODS = Number(process.env.BENCH_AUDIT_PODS ?? 50);
const RUNS = Number(process.env.BENCH_AUDIT_RUNS ?? 5);
const STATUS = JSON.stringify({ initContainers: ['istio-init'], containers: ['istio-proxy'], volumes: null, imagePullSecrets: null, revision: 'default' });
const cleanEnv = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' };

if (process.getuid?.() !== 0) {
  console.log('audit: skipped (needs root to create network namespaces)');
  process.exit(0);
}

const names: string[] = [];
const cleanup = () => {
  for (const name of names.splice(0)) spawnSync('ip', ['netns', 'del', name]);
};
process.on('exit', cleanup);
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));

function must(file: string, args: readonly string[]): void {
  const r = spawnSync(file, args, { encoding: 'utf8', env: cleanEnv });
  if (r.status !== 0) throw new Error(`${file} ${args.join(' ')}: ${r.stderr}`);
}

/** CPU seconds of this process and of its reaped children, from /proc/self/stat (clock ticks of 1/100 s). */
function cpuSeconds(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').replace(/^.*\) /, '').split(' ');
  const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0);
  return ticks / 100;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const sandboxes: Sandbox[] = [];
for (let i = 0; i < PODS; i++) {
  const name = `mc-bench-audit-${process.pid % 100000}-${i}`;
  must('ip', ['netns', 'add', name]);
  names.push(name);
  must('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  must('ip', ['-n', name, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'peer0']);
  must('ip', ['-n', name, 'addr', 'add', '198.18.0.2/24', 'dev', 'eth0']);
  must('ip', ['-n', name, 'link', 'set', 'eth0', 'up']);
  must('ip', ['-n', name, 'link', 'set', 'peer0', 'up']);
  const sandbox: Sandbox = { id: `sb${i}`, namespace: 'bench', name: `pod-${String(i).padStart(2, '0')}`, uid: `u${i}`, ready: true, annotations: { 'sidecar.istio.io/status': STATUS }, netnsPath: `/run/netns/${name}`, addresses: ['198.18.0.2'] };
  const desired = desiredCapture(sandbox);
  if (desired.kind !== 'capture') throw new Error('bench pod is not injected');
  must('ip', ['netns', 'exec', name, process.execPath, MESHCAP_BIN, 'apply', ...desired.args]);
  sandboxes.push(sandbox);
}

const sys = realSystem(cleanEnv);
const deps = { sys, log: silentLogger, sandboxes: async () => sandboxes };
const walls: number[] = [];
const cpus: number[] = [];
for (let run = 0; run < RUNS; run++) {
  const cpu0 = cpuSeconds();
  const t0 = performance.now();
  const result = await auditNode(deps, { repair: false });
  walls.push(performance.now() - t0);
  cpus.push(cpuSeconds() - cpu0);
  const notOk = result.pods.filter((p) => p.state !== 'ok');
  if (result.pods.length !== PODS || notOk.length > 0) throw new Error(`bench audit: ${notOk.length} pods not ok: ${JSON.stringify(notOk[0])}`);
}
const cpu = median(cpus);
console.log(
  `audit: one audit of ${PODS} injected pods (read-only): ${median(walls).toFixed(0)} ms wall, ${(cpu * 1000).toFixed(0)} ms CPU incl. children (median of ${RUNS}): ` +
    `${((cpu * 1000) / PODS).toFixed(1)} ms CPU per pod, ${((cpu / 30) * 100).toFixed(1)}% of one core at the default 30 s interval`,
);

// Flush to restored: one pod loses its nat table; one audit with repair finds and restores it.
const repairs: number[] = [];
for (let run = 0; run < RUNS; run++) {
  must('ip', ['netns', 'exec', names[run % PODS]!, 'iptables-nft', '-t', 'nat', '-F']);
  const t0 = performance.now();
  const result = await auditNode(deps, { repair: true, history: new Map() });
  repairs.push(performance.now() - t0);
  const fixed = result.pods.filter((p) => p.repair?.result === 'ok');
  if (fixed.length !== 1 || result.pods.some((p) => p.state !== 'ok')) throw new Error(`bench repair: ${JSON.stringify(result.pods.filter((p) => p.state !== 'ok'))}`);
}
console.log(`audit: one audit with repair of ${PODS} pods, one of them flushed: ${median(repairs).toFixed(0)} ms wall until its capture is back (median of ${RUNS})`);
cleanup();
