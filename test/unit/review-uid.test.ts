/**
 * locateRequestUid against JSON.parse: on any valid AdmissionReview-shaped
 * text it finds exactly request.uid's literal, or declines; on anything
 * hostile it declines without throwing.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { locateRequestUid } from '../../src/webhook/review-uid.js';

const review = (uid: unknown, extra: Record<string, unknown> = {}) => ({ kind: 'AdmissionReview', request: { uid, kind: { kind: 'Pod' }, ...extra } });

test('finds request.uid wherever the members are, whatever the strings hold', () => {
  fc.assert(
    fc.property(
      fc.string({ minLength: 1, unit: 'binary' }),
      fc.dictionary(fc.string().filter((k) => k !== 'uid'), fc.jsonValue(), { maxKeys: 6 }),
      fc.dictionary(fc.string().filter((k) => k !== 'request'), fc.jsonValue(), { maxKeys: 6 }),
      fc.boolean(),
      fc.constantFrom(0, 2),
      (uid, requestExtra, topExtra, uidLast, indent) => {
        const request = uidLast ? { ...requestExtra, uid } : { uid, ...requestExtra };
        const text = JSON.stringify({ ...topExtra, request, apiVersion: 'admission.k8s.io/v1' }, null, indent);
        const found = locateRequestUid(text);
        // Keys that JSON.stringify had to escape make the locator decline; otherwise it must find the uid.
        const escapedKeys = [...Object.keys(requestExtra), ...Object.keys(topExtra)].some((k) => JSON.stringify(k).includes('\\'));
        if (found === undefined) {
          assert.ok(escapedKeys, `declined a plain review: ${text}`);
          return;
        }
        assert.equal(found.uid, uid);
        assert.equal(JSON.parse(text.slice(found.start, found.end)), uid);
        // Swapping the literal for another uid gives the same review with that uid.
        const swapped = `${text.slice(0, found.start)}"other"${text.slice(found.end)}`;
        assert.equal((JSON.parse(swapped) as { request: { uid: string } }).request.uid, 'other');
      },
    ),
    { numRuns: 2000, seed: 20261122 },
  );
});

test('declines what it cannot be sure of', () => {
  const plain = JSON.stringify(review('u1'));
  assert.equal(locateRequestUid(plain)?.uid, 'u1');
  const declined = [
    JSON.stringify(review('')),
    JSON.stringify(review(7)),
    JSON.stringify(review(null)),
    JSON.stringify({ kind: 'AdmissionReview' }),
    JSON.stringify({ request: ['u1'] }),
    plain.replace('"uid":"u1"', '"uid":"u0","uid":"u1"'),
    `${plain.slice(0, -1)},"request":{"uid":"u2"}}`,
    plain.replace('"request"', '"requ\\u0065st"'),
    plain.replace('"uid"', '"\\u0075id"'),
    `${plain}x`,
    plain.slice(0, -1),
    `[${plain}]`,
    '',
    '{',
    '{"request":{"uid":"u1\\"}}',
    '{"request":{"uid":"a\u0001b"}}',
  ];
  for (const text of declined) assert.equal(locateRequestUid(text), undefined, text);
});

test('hostile text: never throws, always declines or returns a literal that parses', () => {
  fc.assert(
    fc.property(fc.string({ unit: fc.constantFrom('{', '}', '[', ']', '"', '\\', ':', ',', ' ', 'u', 'i', 'd', 'request', 'uid', '1') }), (text) => {
      const found = locateRequestUid(text);
      if (found) assert.equal(JSON.parse(text.slice(found.start, found.end)), found.uid);
    }),
    { numRuns: 3000, seed: 7 },
  );
});
