/**
 * npm run bench:runtime: what a pod start pays for istio-init under a real runtime. In a private containerd
 * (test/runtime/harness.ts), each round creates a fresh sandbox and runs, interleaved:
 *   meshcap   the istio-init container exactly as `meshcap inject` writes it
 *   restore   a container from the same image that runs only `iptables-nft-restore --noflush` of the
 *             same rules (what meshcap applied, read back from a captured pod), Istio's securityContext
 * Reported: the container's own start-to-exit time (ContainerStatus started_at -> finished_at) and
 * CreateContainer-to-exited as the kubelet sees it; medians of BENCH_ROUNDS (default 7) and their ratio.
 * Needs root; builds the image from the Dockerfile when it is not cached (scripts/image/build.sh).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RuntimeNode, type Sandbox } from '../test/runtime/harness.js';
import { kubeletContainer, type K8sContainer } from '../test/runtime/kubelet.js';
import { injectPod, istioInit, meshcapImageArchive, meshRules, podRules } from '../test/runtime/fixtures.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

async function main(): Promise<void> {
  const archive = meshcapImageArchive();
  const node = await RuntimeNode.start({ label: 'bench' });
  try {
    await node.importImage(archive);
    const injected = injectPod({ name: 'bench' });
    const init = istioInit(injected);

    // The rules meshcap applies, as iptables-restore input.
    const first = await node.runSandbox({ name: 'bench-rules' });
    const firstRun = await first.run(kubeletContainer(init, first));
    if (firstRun.exitCode !== 0) throw new Error(`istio-init failed: ${firstRun.log}`);
    const rules = podRules(first, 'nft');
    if (meshRules(rules).length !== 18) throw new Error(`unexpected rules:\n${rules}`);
    await first.remove();
    const rulesDir = join(node.dir, 'bench-rules');
    mkdirSync(rulesDir, { mode: 0o755 });
    writeFileSync(join(rulesDir, 'rules'), rules, { mode: 0o644 });
    const restore: K8sContainer = {
      ...init,
      command: ['iptables-nft-restore', '--noflush', '/etc/meshcap-bench/rules'],
      args: [],
      volumeMounts: [{ name: 'rules', mountPath: '/etc/meshcap-bench', readOnly: true }],
    };

    const times: Record<'meshcap' | 'restore', { inner: number[]; kubelet: number[] }> = { meshcap: { inner: [], kubelet: [] }, restore: { inner: [], kubelet: [] } };
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? (['meshcap', 'restore'] as const) : (['restore', 'meshcap'] as const);
      for (const which of order) {
        const pod: Sandbox = await node.runSandbox({ name: `bench-${which}-${round}`, annotations: injected.annotations });
        const config = kubeletContainer(which === 'meshcap' ? init : restore, pod, { volumeDirs: { rules: rulesDir } });
        const start = process.hrtime.bigint();
        const run = await pod.run(config);
        const kubeletMs = Number(process.hrtime.bigint() - start) / 1e6;
        if (run.exitCode !== 0) throw new Error(`${which} exited ${run.exitCode}: ${run.log}`);
        if (meshRules(podRules(pod, 'nft')).length !== 18) throw new Error(`${which}: the rules are not in place`);
        times[which].inner.push((Number(BigInt(run.status.finished_at) - BigInt(run.status.started_at))) / 1e6);
        times[which].kubelet.push(kubeletMs);
        await pod.remove();
      }
    }
    const m = { meshcap: median(times.meshcap.inner), restore: median(times.restore.inner) };
    const k = { meshcap: median(times.meshcap.kubelet), restore: median(times.restore.kubelet) };
    console.log(`runtime bench: containerd ${(await node.cri.version()).runtime_version}, runc, ${ROUNDS} interleaved rounds, a fresh sandbox each`);
    console.log('| container | start-to-exit median (ms) | min..max | CreateContainer-to-exited median (ms) |');
    console.log('|---|---|---|---|');
    for (const which of ['meshcap', 'restore'] as const) {
      const inner = times[which].inner;
      console.log(`| ${which === 'meshcap' ? 'istio-init (meshcap istio-iptables)' : 'iptables-nft-restore of the same rules'} | ${m[which].toFixed(1)} | ${Math.min(...inner).toFixed(1)}..${Math.max(...inner).toFixed(1)} | ${k[which].toFixed(1)} |`);
    }
    console.log(`ratio (start-to-exit medians): ${(m.meshcap / m.restore).toFixed(2)}x; CreateContainer-to-exited: ${(k.meshcap / k.restore).toFixed(2)}x`);
  } finally {
    await node.stop();
  }
}

await main();
