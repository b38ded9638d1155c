/**
 * `meshcap doctor`'s classifier on pasted text: both doctor corpora (hand-written
 * and real users' logs) repeated to ~5 MB, denser in iptables and kubectl output
 * than any real paste. The median of repeated runs in one process: the
 * classifier is pure and keeps nothing between calls.
 */
import { diagnose } from '../src/doctor/classify.js';
import { loadCorpus, REAL_ROOT } from '../test/unit/doctor/fixtures.js';

const corpus = [...loadCorpus(), ...loadCorpus(REAL_ROOT)].map((f) => f.text).join('\n');
const parts: string[] = [];
let size = 0;
while (size < 5_000_000) {
  parts.push(corpus);
  size += corpus.length + 1;
}
const input = parts.join('\n');
const RUNS = Number(process.env.BENCH_ROUNDS ?? 9);
diagnose(input); // warm-up
const ms: number[] = [];
for (let i = 0; i < RUNS; i++) {
  const t0 = process.hrtime.bigint();
  diagnose(input);
  ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
}
ms.sort((a, b) => a - b);
const median = ms[Math.floor(ms.length / 2)]!;
const mb = input.length / 1e6;
console.log(`doctor: diagnose on ${mb.toFixed(1)} MB of corpus text: median ${median.toFixed(0)} ms (${(mb / (median / 1000)).toFixed(1)} MB/s, ${RUNS} runs)`);
