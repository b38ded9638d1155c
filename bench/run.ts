/**
 * npm run bench: what a pod's init container pays, against the floors.
 *
 *   apply          `meshcap apply` (Istio's default istio-init flags) in a fresh namespace
 *                  floor: `node -e ''` + one iptables-nft-restore of the same rules
 *   no-op          the same command again (the kubelet re-ran the init container)
 *                  floor: `node -e ''` + one iptables-nft-save
 *   5000 CIDRs     apply with 5000 excluded CIDRs, iptables-nft and --native-nftables
 *                  floor: `node -e ''` + one iptables-nft-restore / `nft -f` of the same ruleset
 *   per connection the median TCP connect time through the capture with 5000 linear
 *                  excludes, and with the same list as one set (--cidr-sets)
 *   peak RSS       of one apply, and of `node -e ''`
 *
 * How (see GUIDE.md, "Benchmarks measure what a pod sees"):
 * - every timed child runs with a clean, pod-like environment: no NODE_OPTIONS,
 *   no NODE_EXTRA_CA_CERTS (the latter alone adds ~28 ms to every node start);
 * - each timed command runs as `ip netns exec NS ...`; a floor made of two
 *   commands subtracts one `ip netns exec NS true` of the same round, so both
 *   sides carry that cost exactly once;
 * - cases are interleaved (the order rotates every round, one warm-up round is
 *   dropped), every run gets a fresh namespace, ratios are per round (a run over
 *   the floor of the same round), and the tables report medians.
 *
 * Environment: BENCH_ROUNDS (21), BENCH_BIG_ROUNDS (7), BENCH_CONN_ROUNDS (5),
 * BENCH_CONNECTS (2000 per run), BENCH_ONLY (comma list of case names),
 * BENCH_BEFORE (another checkout's bin/meshcap: measured in the same rounds, for
 * before/after tables from one run), BENCH_SUBJECTS (label=path,... instead of
 * the default subject: dist/sea/meshcap when built, else bin/meshcap). Needs root.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { REPO_ROOT } from '../test/helpers/paths.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 21);
const BIG_ROUNDS = Number(process.env.BENCH_BIG_ROUNDS ?? 7);
const CONN_ROUNDS = Number(process.env.BENCH_CONN_ROUNDS ?? 5);
const CONNECTS = Number(process.env.BENCH_CONNECTS ?? 2000);
const ONLY = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',')) : undefined;

const NODE = process.execPath;
const CONNECT_JS = join(REPO_ROOT, 'dist', 'bench', 'connect.js');
/** What an init container sees: a PATH and a HOME, nothing that changes how node starts. */
const CLEAN_ENV: Record<string, string> = {
  PATH: `${dirname(NODE)}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
  HOME: '/root',
};

interface Subject {
  readonly label: string;
  readonly bin: string;
}
/** What a pod runs: the image's meshcap is the single executable when it was built (npm run build:sea). */
const SEA = join(REPO_ROOT, 'dist', 'sea', 'meshcap');
const SUBJECTS: Subject[] = process.env.BENCH_SUBJECTS
  ? process.env.BENCH_SUBJECTS.split(',').map((item) => ({ label: item.split('=')[0]!, bin: item.slice(item.indexOf('=') + 1) }))
  : [{ label: 'meshcap', bin: existsSync(SEA) ? SEA : join(REPO_ROOT, 'bin', 'meshcap') }];
if (process.env.BENCH_BEFORE) SUBJECTS.push({ label: 'before', bin: process.env.BENCH_BEFORE });

const ISTIO_INIT = ['-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '', '-b', '*', '-d', '15090,15021,15020'];
const CIDRS_5000 = Array.from({ length: 5000 }, (_, i) => `10.${i >> 8}.${i & 255}.0/24`).join(',');
const withExcludes = (cidrs: string) => ISTIO_INIT.map((arg, i) => (ISTIO_INIT[i - 1] === '-x' ? cidrs : arg));

// ---- processes and namespaces ------------------------------------------------

function sh(file: string, args: readonly string[], input?: string): string {
  const result = spawnSync(file, args, { input: input ?? '', encoding: 'utf8', env: CLEAN_ENV, maxBuffer: 64 << 20 });
  if (result.status !== 0) throw new Error(`${file} ${args.join(' ')}: exit ${result.status}: ${result.stderr}`);
  return result.stdout;
}

function timed(file: string, args: readonly string[], input?: string): number {
  const start = process.hrtime.bigint();
  sh(file, args, input);
  return Number(process.hrtime.bigint() - start) / 1e6;
}

const inNs = (ns: string, argv: readonly string[]) => ['netns', 'exec', ns, ...argv];
const timedIn = (ns: string, argv: readonly string[], input?: string) => timed('ip', inNs(ns, argv), input);
const runIn = (ns: string, argv: readonly string[], input?: string) => sh('ip', inNs(ns, argv), input);

const live = new Set<string>();
process.on('exit', () => live.forEach((ns) => spawnSync('ip', ['netns', 'del', ns])));
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));

let nsCounter = 0;
function withNamespace<T>(body: (ns: string) => T, setup: readonly (readonly string[])[] = []): T {
  const ns = `mc-bench-${process.pid}-${++nsCounter}`;
  sh('ip', ['netns', 'add', ns]);
  live.add(ns);
  try {
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    for (const args of setup) sh('ip', ['-n', ns, ...args]);
    return body(ns);
  } finally {
    spawnSync('ip', ['netns', 'del', ns]);
    live.delete(ns);
  }
}

/** One `ip netns exec NS true`: what a floor of two commands subtracts once. */
const nsExecCost = (ns: string) => timedIn(ns, ['true']);

// ---- inputs ------------------------------------------------------------------

/** The IPv4 restore input meshcap writes in a fresh namespace (Istio's own rules, from its dry run). */
function restoreInput(args: readonly string[]): string {
  const lines = sh(SUBJECTS[0]!.bin, ['istio-iptables', '--dry-run', '--ipv6=false', ...args]).trim().split('\n');
  return `${lines.filter((line) => !line.endsWith('-save')).join('\n')}\n`;
}

/** The nft transaction meshcap writes in a fresh namespace. */
const nftInput = (args: readonly string[]) => `${sh(SUBJECTS[0]!.bin, ['istio-iptables', '--dry-run', '--ipv6=false', '--native-nftables', ...args]).trim()}\n`;

// ---- statistics --------------------------------------------------------------

const median = (values: readonly number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/** Samples of one case: per subject, plus the floor, one of each per round. */
interface Sampled {
  readonly subjects: Map<string, number[]>;
  readonly floor: number[];
}

/**
 * A timed case: `subject` runs one measurement for a subject, `floor` one of the
 * floor. Each round runs the floor and every subject, in an order that rotates.
 */
interface TimedCase {
  readonly name: string;
  readonly title: string;
  readonly floorName: string;
  readonly rounds: number;
  readonly subject: (s: Subject) => number;
  readonly floor: () => number;
}

function sample(c: TimedCase): Sampled {
  const subjects = new Map(SUBJECTS.map((s) => [s.label, [] as number[]]));
  const floor: number[] = [];
  const steps: (() => void)[] = [() => floor.push(c.floor()), ...SUBJECTS.map((s) => () => subjects.get(s.label)!.push(c.subject(s)))];
  for (const step of steps) step();
  floor.length = 0;
  subjects.forEach((values) => (values.length = 0));
  for (let round = 0; round < c.rounds; round++) {
    for (let i = 0; i < steps.length; i++) steps[(i + round) % steps.length]!();
  }
  return { subjects, floor };
}

// ---- the cases ---------------------------------------------------------------

function applyCase(name: string, title: string, rounds: number, args: readonly string[], floorTool: 'restore' | 'nft'): TimedCase {
  let input: string | undefined;
  const floorInput = () => (input ??= floorTool === 'nft' ? nftInput(args) : restoreInput(args));
  return {
    name,
    title,
    rounds,
    floorName: `node -e '' + ${floorTool === 'nft' ? 'nft -f' : 'iptables-nft-restore'}`,
    subject: (s) => withNamespace((ns) => timedIn(ns, [s.bin, 'apply', ...args])),
    floor: () =>
      withNamespace((ns) => {
        const tool = floorTool === 'nft' ? ['nft', '-f', '-'] : ['iptables-nft-restore', '--noflush'];
        return timedIn(ns, [NODE, '-e', '']) + timedIn(ns, tool, floorInput()) - nsExecCost(ns);
      }),
  };
}

const noopCase: TimedCase = {
  name: 'noop',
  title: 'no-op re-run',
  rounds: ROUNDS,
  floorName: "node -e '' + iptables-nft-save",
  subject: (s) =>
    withNamespace((ns) => {
      runIn(ns, [s.bin, 'apply', ...ISTIO_INIT]);
      return timedIn(ns, [s.bin, 'apply', ...ISTIO_INIT]);
    }),
  floor: () =>
    withNamespace((ns) => {
      runIn(ns, ['iptables-nft-restore', '--noflush'], restoreInput(ISTIO_INIT));
      return timedIn(ns, [NODE, '-e', '']) + timedIn(ns, ['iptables-nft-save']) - nsExecCost(ns);
    }),
};

const TIMED: TimedCase[] = [
  applyCase('apply', 'apply (istio-init defaults)', ROUNDS, ISTIO_INIT, 'restore'),
  noopCase,
  applyCase('apply5000', 'apply, 5000 CIDRs, iptables-nft', BIG_ROUNDS, withExcludes(CIDRS_5000), 'restore'),
  applyCase('apply5000nft', 'apply, 5000 CIDRs, native nft', BIG_ROUNDS, ['--native-nftables', ...withExcludes(CIDRS_5000)], 'nft'),
];

/** A namespace where 198.18.0.2 is routable (a veth pair, both ends inside), so connects to it leave through nat OUTPUT. */
const CONN_SETUP = [
  ['link', 'add', 'mc0', 'type', 'veth', 'peer', 'name', 'mc1'],
  ['addr', 'add', '198.18.0.1/24', 'dev', 'mc0'],
  ['link', 'set', 'mc0', 'up'],
  ['link', 'set', 'mc1', 'up'],
];

/** Median connect time (µs) through the capture applied with `args`. (--cidr-sets changes nothing on iptables: no row.) */
function connectCost(args: readonly string[]): number {
  return withNamespace((ns) => {
    runIn(ns, [SUBJECTS[0]!.bin, 'apply', '--ipv6=false', ...args]);
    return Number(runIn(ns, [NODE, CONNECT_JS, '198.18.0.2', '8080', '15001', String(CONNECTS)]).trim());
  }, CONN_SETUP);
}

const CONN_VARIANTS: { name: string; backend: string; args: readonly string[] }[] = [
  { name: 'none', backend: 'iptables-nft', args: ISTIO_INIT },
  { name: '5000 linear', backend: 'iptables-nft', args: withExcludes(CIDRS_5000) },
  { name: 'none', backend: 'native nft', args: ['--native-nftables', ...ISTIO_INIT] },
  { name: '5000 linear', backend: 'native nft', args: ['--native-nftables', ...withExcludes(CIDRS_5000)] },
  { name: '5000 as a set', backend: 'native nft', args: ['--native-nftables', '--cidr-sets', ...withExcludes(CIDRS_5000)] },
];

/** Does this meshcap know a flag? (A BENCH_BEFORE build may predate --cidr-sets.) */
function knowsFlag(flag: string): boolean {
  return spawnSync(SUBJECTS[0]!.bin, ['istio-iptables', '--dry-run', flag, ...ISTIO_INIT], { env: CLEAN_ENV }).status === 0;
}

function peakRssMb(argv: readonly string[]): number {
  return withNamespace((ns) => {
    const result = spawnSync('ip', inNs(ns, ['/usr/bin/time', '-f', '%M', ...argv]), { encoding: 'utf8', env: CLEAN_ENV });
    if (result.status !== 0) throw new Error(`${argv.join(' ')}: ${result.stderr}`);
    return Number(result.stderr.trim().split('\n').pop()) / 1024;
  });
}

// ---- main --------------------------------------------------------------------

const fmt = (ms: number) => ms.toFixed(1).padStart(7);

function main() {
  if (process.getuid?.() !== 0) {
    console.error('bench: needs root (it creates network namespaces)');
    process.exit(4);
  }
  for (const s of SUBJECTS) if (!existsSync(s.bin)) throw new Error(`bench: ${s.bin} not found (npm run build)`);
  const wanted = (name: string) => !ONLY || ONLY.has(name);
  console.log(`meshcap bench: node ${process.version}, clean child environment, medians, ratios per round against the floor of the same round`);
  console.log(`subjects: ${SUBJECTS.map((s) => `${s.label} = ${s.bin}`).join('; ')}\n`);
  console.log(`| case | ${SUBJECTS.map((s) => `${s.label} ms | ratio`).join(' | ')} | floor ms | floor | rounds |`);
  console.log(`|---|${SUBJECTS.map(() => '---|---').join('|')}|---|---|---|`);
  for (const c of TIMED.filter((c) => wanted(c.name))) {
    const { subjects, floor } = sample(c);
    const cells = SUBJECTS.map((s) => {
      const values = subjects.get(s.label)!;
      const ratios = values.map((v, i) => v / floor[i]!);
      return `${fmt(median(values))} | ${median(ratios).toFixed(2)}`;
    });
    console.log(`| ${c.title} | ${cells.join(' | ')} | ${fmt(median(floor))} | ${c.floorName} | ${c.rounds} |`);
  }

  if (wanted('conn')) {
    const sets = knowsFlag('--cidr-sets');
    const variants = CONN_VARIANTS.filter((v) => sets || !v.args.includes('--cidr-sets'));
    const samples = variants.map(() => [] as number[]);
    for (let round = -1; round < CONN_ROUNDS; round++) {
      for (let i = 0; i < variants.length; i++) {
        const k = (i + Math.max(round, 0)) % variants.length;
        const us = connectCost(variants[k]!.args);
        if (round >= 0) samples[k]!.push(us);
      }
    }
    console.log(`\nper-connection cost: median TCP connect through the capture (${CONNECTS} connects per run, ${CONN_ROUNDS} interleaved runs, medians)\n`);
    console.log('| backend | excludes | connect µs | over none µs |');
    console.log('|---|---|---|---|');
    for (const [i, v] of variants.entries()) {
      const none = variants.findIndex((w) => w.backend === v.backend && w.name === 'none');
      const us = median(samples[i]!);
      console.log(`| ${v.backend} | ${v.name} | ${us.toFixed(1)} | ${i === none ? '' : (us - median(samples[none]!)).toFixed(1)} |`);
    }
    if (!sets) console.log('(this meshcap has no --cidr-sets: set rows left out)');
  }

  if (wanted('rss')) {
    const runs = 5;
    const node = median(Array.from({ length: runs }, () => peakRssMb([NODE, '-e', ''])));
    console.log(`\npeak RSS (median of ${runs}, /usr/bin/time): node -e '' ${node.toFixed(1)} MB` +
      SUBJECTS.map((s) => `; ${s.label} apply ${median(Array.from({ length: runs }, () => peakRssMb([s.bin, 'apply', ...ISTIO_INIT]))).toFixed(1)} MB`).join(''));
  }
  console.log('\ngoals: apply <= 1.6, no-op <= 1.5, 5000 CIDRs <= 2.0 on both backends');
}

main();
