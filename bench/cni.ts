/**
 * npm run bench:cni: what CNI mode costs a pod at sandbox creation.
 *
 * 1. RunPodSandbox through a private containerd (Debian 1.6, CRI), bridge +
 *    portmap, with and without meshcap-cni chained: two containerd nodes,
 *    sandboxes alternated between them (interleaved), BENCH_CNI_SANDBOXES
 *    (default 50) each, injected annotations from `meshcap inject --cni`.
 *    meshcap's share = the difference of the medians.
 * 2. The plugin alone, by direct exec the way libcni runs it (clean env, no
 *    node on PATH): ADD of an injected pod in a fresh netns (capture), ADD of
 *    an uninjected pod (the skip path every other pod takes), the capture
 *    again without unshare on PATH (the cost of the NSS sandbox), and VERSION
 *    (the single executable's start-up alone).
 * Needs root, containerd and containernetworking-plugins.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { injectManifests } from '../src/inject/manifest.js';
import { DEFAULT_SETTINGS } from '../src/inject/settings.js';
import { podsOf } from '../test/golden/inject-compare.js';
import { ensurePlugin } from '../test/helpers/cni-node.js';
import { podManifest } from '../test/helpers/manifests.js';
import { RuntimeNode } from '../test/runtime/harness.js';

const N = Number(process.env.BENCH_CNI_SANDBOXES ?? 50);
const quantile = (values: number[], q: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
};
const fmt = (values: number[]) => `median ${quantile(values, 0.5).toFixed(1)} ms, p99 ${quantile(values, 0.99).toFixed(1)} ms (n=${values.length})`;

function tools(dir: string, name = 'tools', without: readonly string[] = []): string {
  const bin = join(dir, name);
  mkdirSync(bin);
  for (const tool of ['nsenter', 'unshare', 'mount', 'containerd', 'containerd-shim-runc-v2', 'runc'].filter((t) => !without.includes(t))) {
    const path = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
    if (path && !path.startsWith('/usr/sbin/') && !path.startsWith('/sbin/')) symlinkSync(path, join(bin, tool));
  }
  return `${bin}:/usr/sbin:/sbin`;
}

function conf(dir: string, name: string, subnet: number): string {
  const confDir = join(dir, name);
  mkdirSync(confDir);
  writeFileSync(join(confDir, '10-primary.conflist'), JSON.stringify({
    cniVersion: '1.0.0',
    name: `bench${subnet}`,
    plugins: [
      { type: 'bridge', bridge: `mcbench${subnet}`, isGateway: true, ipMasq: false, ipam: { type: 'host-local', dataDir: join(dir, `ipam${subnet}`), ranges: [[{ subnet: `198.18.${subnet}.0/24`, gateway: `198.18.${subnet}.1` }]], routes: [{ dst: '0.0.0.0/0' }] } },
      { type: 'portmap', capabilities: { portMappings: true }, snat: true },
    ],
  }));
  return confDir;
}

/** Wall ms, and CPU ms (user + system of the plugin and every process it waited for, from GNU time): CPU holds up under load. */
function direct(plugin: string, path: string, annotations: Record<string, string>, command = 'ADD'): { wall: number; cpu: number } {
  const ns = `mc-bench-cni-${process.pid}`;
  spawnSync('ip', ['netns', 'add', ns]);
  spawnSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  try {
    const stdin = JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'meshcap-cni', runtimeConfig: { 'io.kubernetes.cri.pod-annotations': annotations }, prevResult: { cniVersion: '1.0.0', ips: [{ address: '198.18.0.2/24' }] } });
    const env = { PATH: path, CNI_COMMAND: command, CNI_CONTAINERID: 'bench', CNI_NETNS: `/run/netns/${ns}`, CNI_IFNAME: 'eth0', CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=bench' };
    const start = process.hrtime.bigint();
    const r = spawnSync('/usr/bin/time', ['-f', 'meshcap-bench-cpu %U %S', plugin], { env, input: stdin, encoding: 'utf8' });
    const wall = Number(process.hrtime.bigint() - start) / 1e6;
    if (r.status !== 0) throw new Error(`meshcap-cni ${command}: ${r.stdout} ${r.stderr}`);
    const cpu = /meshcap-bench-cpu (\S+) (\S+)/.exec(r.stderr);
    return { wall, cpu: cpu ? (Number(cpu[1]) + Number(cpu[2])) * 1000 : NaN };
  } finally {
    spawnSync('ip', ['netns', 'del', ns]);
  }
}

async function main(): Promise<void> {
  const plugin = ensurePlugin();
  const dir = mkdtempSync(join(tmpdir(), 'meshcap-bench-cni-'));
  const path = tools(dir);
  // No unshare on PATH: meshcap-cni runs its capture without the private mount namespace (what the NSS sandbox costs).
  const unsandboxed = tools(dir, 'tools-no-unshare', ['unshare']);
  const injected = podsOf(injectManifests(podManifest({}), { ...DEFAULT_SETTINGS, cni: true }).text)[0]!.metadata.annotations as Record<string, string>;
  const plain = { 'kubernetes.io/config.source': 'api' };
  const nodes: RuntimeNode[] = [];
  try {
    // Direct exec first (no containerd running beside it).
    const samples = { capture: [] as { wall: number; cpu: number }[], unsandboxed: [] as { wall: number; cpu: number }[], skip: [] as { wall: number; cpu: number }[], version: [] as { wall: number; cpu: number }[] };
    for (let i = 0; i < N; i++) {
      samples.capture.push(direct(plugin, path, injected));
      samples.unsandboxed.push(direct(plugin, unsandboxed, injected));
      samples.skip.push(direct(plugin, path, plain));
      samples.version.push(direct(plugin, path, plain, 'VERSION'));
    }
    const both = (xs: { wall: number; cpu: number }[]) => `${fmt(xs.map((x) => x.wall))}; CPU median ${quantile(xs.map((x) => x.cpu), 0.5).toFixed(0)} ms`;
    const withConf = conf(dir, 'with', 230);
    const withoutConf = conf(dir, 'without', 231);
    const withNode = await RuntimeNode.start({ label: 'bcw', cniConfDir: withConf, env: { PATH: path } });
    nodes.push(withNode);
    const withoutNode = await RuntimeNode.start({ label: 'bco', cniConfDir: withoutConf, env: { PATH: path } });
    nodes.push(withoutNode);
    const install = spawnSync(process.execPath, [join(process.cwd(), 'bin', 'meshcap'), 'cni', 'install', '--cni-conf-dir', withConf, '--cni-bin-dir', join(withNode.dir, 'cni-bin'), '--once'], { env: { PATH: process.env.PATH!, MESHCAP_CNI_PLUGIN: plugin }, encoding: 'utf8' });
    if (install.status !== 0) throw new Error(install.stderr);
    const run = { with: [] as number[], without: [] as number[] };
    for (let i = 0; i < N; i++) {
      for (const [key, node] of [['with', withNode], ['without', withoutNode]] as const) {
        const start = process.hrtime.bigint();
        const pod = await node.runSandbox({ name: `b${i}`, annotations: injected });
        run[key].push(Number(process.hrtime.bigint() - start) / 1e6);
        await pod.remove();
      }
    }
    const share = quantile(run.with, 0.5) - quantile(run.without, 0.5);
    console.log(`meshcap-cni bench (${N} sandboxes each; node ${process.version}; plugin ${(statSync(plugin).size / 1e6).toFixed(1)} MB single executable; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} on ${cpus().length} CPUs)`);
    console.log(`  RunPodSandbox, bridge+portmap+meshcap-cni (injected pod): ${fmt(run.with)}`);
    console.log(`  RunPodSandbox, bridge+portmap only (same pod):             ${fmt(run.without)}`);
    console.log(`  meshcap's share of sandbox creation (difference of medians): ${share.toFixed(1)} ms`);
    console.log(`  meshcap-cni ADD alone, injected pod (capture in a fresh netns): ${both(samples.capture)}`);
    console.log(`  the same without the NSS sandbox (no unshare on PATH):         ${both(samples.unsandboxed)}`);
    console.log(`  the NSS sandbox's cost (difference of the medians): ${(quantile(samples.capture.map((x) => x.wall), 0.5) - quantile(samples.unsandboxed.map((x) => x.wall), 0.5)).toFixed(1)} ms wall, ${(quantile(samples.capture.map((x) => x.cpu), 0.5) - quantile(samples.unsandboxed.map((x) => x.cpu), 0.5)).toFixed(0)} ms CPU`);
    console.log(`  meshcap-cni ADD alone, uninjected pod (pass-through):           ${both(samples.skip)}`);
    console.log(`  meshcap-cni VERSION (start-up of the executable alone):         ${both(samples.version)}`);
  } finally {
    for (const node of nodes) await node.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
