/**
 * The webhook's per-request work without HTTP: answerReview on the bench's
 * AdmissionReview, uncached, so every call runs the whole engine. Shows where
 * the webhook's time goes when pods are all distinct.
 */
import { answerReview } from '../src/webhook/admission.js';
import { DEFAULT_SETTINGS } from '../src/inject/settings.js';
import { realisticReview } from './review.js';

const body = realisticReview();
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 20_000);
const run = (n: number) => {
  for (let i = 0; i < n; i++) {
    const answer = answerReview(body, DEFAULT_SETTINGS);
    if (answer.outcome !== 'injected') throw new Error(`bench pod not injected: ${answer.message}`);
  }
};
run(2000);
const t0 = process.hrtime.bigint();
run(ROUNDS);
const us = Number(process.hrtime.bigint() - t0) / 1e3 / ROUNDS;
console.log(`engine: answerReview (parse, engine, patch, response text), uncached, ${Buffer.byteLength(body)}-byte review: ${us.toFixed(1)} µs/review (${ROUNDS} rounds)`);
