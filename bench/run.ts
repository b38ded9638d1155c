/**
 * npm run bench: wall time of `meshcap apply` and of a no-op re-run, each in a
 * fresh network namespace, against their floors:
 *   apply floor = `node -e ''` + one iptables-restore of the same rules
 *   no-op floor = `node -e ''` + one iptables-save
 * Runs are interleaved so drift in machine load hits all four alike.
 * BENCH_ROUNDS (default 21) sets the number of rounds. Needs root.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from '../test/helpers/paths.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 21);
const MESHCAP = join(REPO_ROOT, 'bin', 'meshcap');
const ISTIO_INIT = ['-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '', '-b', '*', '-d', '15090,15021,15020'];

function sh(file: string, args: readonly string[], input?: string): void {
  const result = spawnSync(file, args, { input: input ?? '', encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${file} ${args.join(' ')}: exit ${result.status}: ${result.stderr}`);
}

function timed(file: string, args: readonly string[], input?: string): number {
  const start = process.hrtime.bigint();
  sh(file, args, input);
  return Number(process.hrtime.bigint() - start) / 1e6;
}

let nsCounter = 0;
function withNamespace<T>(body: (ns: string) => T): T {
  const ns = `mc-bench-${process.pid}-${++nsCounter}`;
  sh('ip', ['netns', 'add', ns]);
  try {
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    return body(ns);
  } finally {
    spawnSync('ip', ['netns', 'del', ns]);
  }
}

const inNs = (ns: string, args: readonly string[]) => ['netns', 'exec', ns, ...args];

/** The IPv4 restore input meshcap writes for the config in a fresh namespace (Istio's own). */
function restoreInput(): string {
  const result = spawnSync(process.execPath, [MESHCAP, 'istio-iptables', '--dry-run', '--ipv6=false', ...ISTIO_INIT], { encoding: 'utf8' });
  const lines = result.stdout.trim().split('\n');
  return `${lines.filter((line) => !line.endsWith('-save')).join('\n')}\n`;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

function main() {
  if (process.getuid?.() !== 0) {
    console.error('bench: needs root (it creates network namespaces)');
    process.exit(4);
  }
  const rules = restoreInput();
  const samples = { apply: [] as number[], applyFloor: [] as number[], noop: [] as number[], noopFloor: [] as number[] };
  const measurements: Record<keyof typeof samples, () => number> = {
    applyFloor: () =>
      withNamespace((ns) => timed('ip', inNs(ns, [process.execPath, '-e', ''])) + timed('ip', inNs(ns, ['iptables-nft-restore', '--noflush']), rules)),
    apply: () => withNamespace((ns) => timed('ip', inNs(ns, [process.execPath, MESHCAP, 'apply', ...ISTIO_INIT]))),
    noopFloor: () =>
      withNamespace((ns) => {
        sh('ip', inNs(ns, ['iptables-nft-restore', '--noflush']), rules);
        return timed('ip', inNs(ns, [process.execPath, '-e', ''])) + timed('ip', inNs(ns, ['iptables-nft-save']));
      }),
    noop: () =>
      withNamespace((ns) => {
        sh('ip', inNs(ns, [process.execPath, MESHCAP, 'apply', ...ISTIO_INIT]));
        return timed('ip', inNs(ns, [process.execPath, MESHCAP, 'apply', ...ISTIO_INIT]));
      }),
  };
  const order = Object.keys(measurements) as (keyof typeof samples)[];
  // One warm-up round so page cache and binary loading do not count for whichever runs first.
  for (const key of order) measurements[key]();
  for (let round = 0; round < ROUNDS; round++) {
    // Rotate the order each round: interleaved, and no measurement always first.
    for (let i = 0; i < order.length; i++) {
      const key = order[(i + round) % order.length]!;
      samples[key].push(measurements[key]());
    }
  }
  const m = Object.fromEntries(Object.entries(samples).map(([key, values]) => [key, median(values)])) as Record<keyof typeof samples, number>;
  const row = (name: string, value: number, floor: number, floorName: string) =>
    `${name.padEnd(28)} ${value.toFixed(1).padStart(7)} ms   floor ${floor.toFixed(1).padStart(7)} ms (${floorName})   ratio ${(value / floor).toFixed(2)}`;
  console.log(`meshcap bench: medians of ${ROUNDS} interleaved rounds, each run in a fresh network namespace (iptables-nft)`);
  console.log(row('apply (default istio-init)', m.apply, m.applyFloor, "node -e '' + iptables-restore"));
  console.log(row('no-op re-run', m.noop, m.noopFloor, "node -e '' + iptables-save"));
  console.log('goal: both ratios <= 1.50');
}

main();
