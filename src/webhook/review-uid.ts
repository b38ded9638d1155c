/**
 * Where `request.uid` sits in an AdmissionReview's JSON text, found by
 * skipping over the text rather than parsing it: a repeated request (a
 * scale-out's next replica) is answered from the cache without building the
 * pod object again. Pure.
 *
 * Made for valid JSON. On a cache hit the text minus this literal equals one
 * that was fully parsed and checked before (the cache key is its digest), and
 * the literal itself is checked to be a JSON string, so the whole text is valid
 * too. Anything unusual (escaped or repeated keys, a uid that is not a string)
 * gives undefined: the caller then takes the full path.
 */

export interface UidLiteral {
  /** text.slice(start, end) is the JSON string literal, quotes included. */
  readonly start: number;
  readonly end: number;
  readonly uid: string;
}

const QUOTE = 34; // "
const BACKSLASH = 92;
const OPEN_BRACE = 123; // {
const CLOSE_BRACE = 125; // }
const OPEN_BRACKET = 91; // [
const CLOSE_BRACKET = 93; // ]
const COMMA = 44;
const COLON = 58;

function skipSpace(text: string, i: number): number {
  for (;;) {
    const c = text.charCodeAt(i);
    if (c !== 32 && c !== 10 && c !== 13 && c !== 9) return i;
    i++;
  }
}

/** `i` at an opening quote: the index after the closing one, or -1. */
function skipString(text: string, i: number): number {
  let j = i + 1;
  for (;;) {
    const quote = text.indexOf('"', j);
    if (quote === -1) return -1;
    let backslashes = 0;
    for (let k = quote - 1; text.charCodeAt(k) === BACKSLASH; k--) backslashes++;
    if (backslashes % 2 === 0) return quote + 1;
    j = quote + 1;
  }
}

/** `i` at the start of any value: the index after it, or -1. */
function skipValue(text: string, i: number): number {
  const c = text.charCodeAt(i);
  if (c === QUOTE) return skipString(text, i);
  if (c !== OPEN_BRACE && c !== OPEN_BRACKET) {
    // A number or a literal: up to the next delimiter.
    let j = i;
    for (;;) {
      const d = text.charCodeAt(j);
      if (Number.isNaN(d) || d === COMMA || d === CLOSE_BRACE || d === CLOSE_BRACKET || d === 32 || d === 10 || d === 13 || d === 9) break;
      j++;
    }
    return j === i ? -1 : j;
  }
  let depth = 0;
  let j = i;
  while (j < text.length) {
    const d = text.charCodeAt(j);
    if (d === QUOTE) {
      j = skipString(text, j);
      if (j === -1) return -1;
      continue;
    }
    if (d === OPEN_BRACE || d === OPEN_BRACKET) depth++;
    else if (d === CLOSE_BRACE || d === CLOSE_BRACKET) {
      depth--;
      if (depth === 0) return j + 1;
    }
    j++;
  }
  return -1;
}

/**
 * Calls `member(key, valueStart)` for each member of the object at `i` (keys
 * as written, quotes included); `member` returns where the value ends, or -1
 * to give up. Returns the index after the object, or -1.
 */
function eachMember(text: string, i: number, member: (key: string, at: number) => number): number {
  if (text.charCodeAt(i) !== OPEN_BRACE) return -1;
  i = skipSpace(text, i + 1);
  if (text.charCodeAt(i) === CLOSE_BRACE) return i + 1;
  for (;;) {
    if (text.charCodeAt(i) !== QUOTE) return -1;
    const keyEnd = skipString(text, i);
    if (keyEnd === -1) return -1;
    const key = text.slice(i, keyEnd);
    // An escaped key could spell "uid" or "request" in a way a plain comparison misses.
    if (key.includes('\\')) return -1;
    i = skipSpace(text, keyEnd);
    if (text.charCodeAt(i) !== COLON) return -1;
    i = member(key, skipSpace(text, i + 1));
    if (i === -1) return -1;
    i = skipSpace(text, i);
    const c = text.charCodeAt(i);
    if (c === CLOSE_BRACE) return i + 1;
    if (c !== COMMA) return -1;
    i = skipSpace(text, i + 1);
  }
}

export function locateRequestUid(text: string): UidLiteral | undefined {
  let found: { start: number; end: number } | undefined;
  let requests = 0;
  let uids = 0;
  const end = eachMember(text, skipSpace(text, 0), (key, at) => {
    if (key !== '"request"') return skipValue(text, at);
    requests++;
    return eachMember(text, at, (requestKey, valueAt) => {
      if (requestKey !== '"uid"') return skipValue(text, valueAt);
      uids++;
      if (text.charCodeAt(valueAt) !== QUOTE) return -1;
      const literalEnd = skipString(text, valueAt);
      if (literalEnd !== -1) found = { start: valueAt, end: literalEnd };
      return literalEnd;
    });
  });
  if (end === -1 || skipSpace(text, end) !== text.length || requests !== 1 || uids !== 1 || !found) return undefined;
  let uid: unknown;
  try {
    uid = JSON.parse(text.slice(found.start, found.end));
  } catch {
    return undefined;
  }
  return typeof uid === 'string' && uid !== '' ? { ...found, uid } : undefined;
}
