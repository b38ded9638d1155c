/**
 * answerReview's answer cache: a repeated request (only the uid differs) is
 * answered from the cache with the new uid and the same patch; anything that
 * could make two requests differ beyond the uid is never answered from it.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DEFAULT_SETTINGS } from '../../src/inject/settings.js';
import { AnswerCache, MAX_CACHED_REQUEST_CHARS, type ReviewAnswer, answerReview } from '../../src/webhook/admission.js';
import { admissionReview } from '../helpers/admission.js';

function reviewText(uid: string, podName = 'web', annotations: Record<string, string> = {}): string {
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { generateName: `${podName}-`, annotations },
    spec: { containers: [{ name: podName, image: `${podName}:1`, ports: [{ containerPort: 8080 }] }] },
  };
  return JSON.stringify(admissionReview(pod, uid, 'shop'));
}

const response = (answer: ReviewAnswer) => (JSON.parse(answer.body) as { response: Record<string, unknown> }).response;

describe('answer cache', () => {
  test('a request repeated with another uid is answered from the cache, with that uid and the same patch', () => {
    const cache = new AnswerCache(8);
    const first = answerReview(reviewText('uid-a'), DEFAULT_SETTINGS, cache);
    const second = answerReview(reviewText('uid-b'), DEFAULT_SETTINGS, cache);
    assert.equal(first.cached, false);
    assert.equal(second.cached, true);
    assert.equal(second.outcome, 'injected');
    assert.equal(response(second).uid, 'uid-b');
    assert.equal(response(second).patch, response(first).patch);
    // The cached answer is byte for byte what the engine gives without a cache.
    assert.equal(second.body, answerReview(reviewText('uid-b'), DEFAULT_SETTINGS).body);
  });

  test('a different pod is not answered from the cache', () => {
    const cache = new AnswerCache(8);
    answerReview(reviewText('uid-a', 'web'), DEFAULT_SETTINGS, cache);
    const other = answerReview(reviewText('uid-b', 'api'), DEFAULT_SETTINGS, cache);
    assert.equal(other.cached, false);
    assert.notEqual(response(other).patch, response(answerReview(reviewText('uid-c', 'web'), DEFAULT_SETTINGS, cache)).patch);
  });

  test('a uid that also appears inside the pod: only the request uid is cut, so another pod never matches', () => {
    const cache = new AnswerCache(8);
    answerReview(reviewText('uid-a', 'web', { note: 'uid-a' }), DEFAULT_SETTINGS, cache);
    // The same pod under another uid: a hit.
    const same = answerReview(reviewText('uid-b', 'web', { note: 'uid-a' }), DEFAULT_SETTINGS, cache);
    assert.deepEqual([same.cached, response(same).uid], [true, 'uid-b']);
    // A pod whose annotation differs exactly where the uid differs: cutting every occurrence would confuse the two.
    const other = answerReview(reviewText('uid-b', 'web', { note: 'uid-b' }), DEFAULT_SETTINGS, cache);
    assert.equal(other.cached, false);
    assert.equal(other.body, answerReview(reviewText('uid-b', 'web', { note: 'uid-b' }), DEFAULT_SETTINGS).body);
  });

  test('a request whose uid cannot be located without parsing is answered the long way, correctly', () => {
    const cache = new AnswerCache(8);
    // A duplicate key: JSON.parse takes the last one, so that one is answered; nothing is remembered.
    const duplicate = reviewText('uid-a').replace('"uid":"uid-a"', '"uid":"uid-x","uid":"uid-a"');
    for (let i = 0; i < 2; i++) {
      const answer = answerReview(duplicate, DEFAULT_SETTINGS, cache);
      assert.deepEqual([answer.cached, answer.outcome, response(answer).uid], [false, 'injected', 'uid-a']);
    }
  });

  test('denials and skips are remembered too, and stay correct', () => {
    const cache = new AnswerCache(8);
    const bad = { 'traffic.sidecar.istio.io/includeOutboundIPRanges': 'bad' };
    answerReview(reviewText('uid-a', 'web', bad), DEFAULT_SETTINGS, cache);
    const denied = answerReview(reviewText('uid-b', 'web', bad), DEFAULT_SETTINGS, cache);
    assert.equal(denied.cached, true);
    assert.equal(denied.outcome, 'denied');
    assert.equal(response(denied).allowed, false);
    assert.equal(response(denied).uid, 'uid-b');
    const optOut = { 'sidecar.istio.io/inject': 'false' };
    answerReview(reviewText('uid-c', 'web', optOut), DEFAULT_SETTINGS, cache);
    const skipped = answerReview(reviewText('uid-d', 'web', optOut), DEFAULT_SETTINGS, cache);
    assert.deepEqual([skipped.cached, skipped.outcome, response(skipped)], [true, 'skipped', { uid: 'uid-d', allowed: true }]);
  });

  test('bounded: the least recently used answer is evicted first', () => {
    const cache = new AnswerCache(2);
    answerReview(reviewText('1', 'a'), DEFAULT_SETTINGS, cache);
    answerReview(reviewText('2', 'b'), DEFAULT_SETTINGS, cache);
    assert.equal(answerReview(reviewText('3', 'a'), DEFAULT_SETTINGS, cache).cached, true); // a is now the most recent
    answerReview(reviewText('4', 'c'), DEFAULT_SETTINGS, cache); // evicts b
    assert.equal(answerReview(reviewText('5', 'a'), DEFAULT_SETTINGS, cache).cached, true);
    assert.equal(answerReview(reviewText('6', 'b'), DEFAULT_SETTINGS, cache).cached, false);
  });

  test('requests above the size bound are answered but not remembered (the cache\'s memory stays bounded)', () => {
    const cache = new AnswerCache(8);
    const big = { filler: 'x'.repeat(MAX_CACHED_REQUEST_CHARS) };
    assert.equal(answerReview(reviewText('uid-a', 'web', big), DEFAULT_SETTINGS, cache).outcome, 'injected');
    const again = answerReview(reviewText('uid-b', 'web', big), DEFAULT_SETTINGS, cache);
    assert.deepEqual([again.cached, again.outcome], [false, 'injected']);
  });

  test('capacity 0 never caches', () => {
    const cache = new AnswerCache(0);
    answerReview(reviewText('uid-a'), DEFAULT_SETTINGS, cache);
    assert.equal(answerReview(reviewText('uid-b'), DEFAULT_SETTINGS, cache).cached, false);
  });
});
