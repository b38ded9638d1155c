/**
 * The webhook's per-request work without HTTP: answerReview on the bench's
 * AdmissionReview, uncached, so every call runs the whole engine. Shows where
 * the webhook's time goes when pods are all distinct.
 */
import { answerReview } from '../src/webhook/admission.js';
import { DEFAULT_SETTINGS } from '../src/inject/settings.js';
import { realisticReview } from './review.js';

// Pods of different workloads, as in the webhook bench's distinct-pods run.
const bodies = Array.from({ length: 1024 }, (_, i) => realisticReview(i + 1));
const body = bodies[0]!;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 20_000);
const run = (n: number) => {
  for (let i = 0; i < n; i++) {
    const answer = answerReview(bodies[i % bodies.length]!, DEFAULT_SETTINGS);
    if (answer.outcome !== 'injected') throw new Error(`bench pod not injected: ${answer.message}`);
  }
};
run(2000);
const t0 = process.hrtime.bigint();
run(ROUNDS);
const us = Number(process.hrtime.bigint() - t0) / 1e3 / ROUNDS;
console.log(`engine: answerReview (parse, engine, patch, response text), uncached, distinct pods, ~${Buffer.byteLength(body)}-byte reviews: ${us.toFixed(1)} µs/review (${ROUNDS} rounds)`);
