/**
 * A cheap first pass that decides which patterns are worth running on a line.
 *
 * Every pattern gets "needles": literal strings that any match must contain
 * (one per top-level alternative), derived from the regex source. One scan of
 * the line with an Aho-Corasick automaton finds all needles at once, so a
 * line costs O(length) plus the few regexes whose needles it contains, instead
 * of one regex run per pattern. Patterns without a usable needle are always run.
 */

/** Shorter literals would match nearly every line and filter nothing. */
const MIN_NEEDLE = 3;
const ALPHABET = 128;

/**
 * What any match of `re` must contain, as clauses that all have to hold, each
 * satisfied by any one of its (lower-cased) needles. Undefined when nothing
 * can be read off the source; the pattern then runs on every line.
 */
export function literalRequirements(re: RegExp): string[][] | undefined {
  const clauses = requirementsOf(re.source);
  return clauses.length === 0 ? undefined : clauses;
}

/** The needle list of a single-clause view (kept for tests and diagnostics). */
export function literalNeedles(re: RegExp): string[] | undefined {
  const clauses = literalRequirements(re);
  return clauses === undefined ? undefined : clauses.flat();
}

function requirementsOf(src: string): string[][] {
  const alternatives = splitTopLevel(src);
  if (alternatives.length > 1) {
    // Any alternative may match: one clause holding the best needle of each, or nothing.
    const clause: string[] = [];
    for (const alternative of alternatives) {
      const best = longestLiteral(alternative);
      if (best.length < MIN_NEEDLE) return [];
      clause.push(best.toLowerCase());
    }
    return [clause];
  }
  const clauses: string[][] = [];
  for (const run of literalRuns(src)) clauses.push([run.toLowerCase()]);
  for (const group of mandatoryGroups(src)) {
    const inner = requirementsOf(group);
    // A group's clauses hold for the whole pattern too, since the group must match.
    clauses.push(...inner);
  }
  return clauses;
}

/** Splits a regex source at top-level `|`, honouring escapes, classes and groups. */
function splitTopLevel(src: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let inClass = false;
  let start = 0;
  for (let i = 0; i < src.length; i += 1) {
    const ch = src[i];
    if (ch === '\\') {
      i += 1;
      continue;
    }
    if (inClass) {
      if (ch === ']') inClass = false;
      continue;
    }
    if (ch === '[') inClass = true;
    else if (ch === '(') depth += 1;
    else if (ch === ')') depth -= 1;
    else if (ch === '|' && depth === 0) {
      parts.push(src.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(src.slice(start));
  return parts;
}

/** Escapes that stand for classes, anchors or control characters rather than one printable literal. */
const NON_LITERAL_ESCAPES = new Set(['d', 'D', 'w', 'W', 's', 'S', 'b', 'B', 'n', 'r', 't', 'v', 'f', '0', 'u', 'x', 'c', 'p', 'P', 'k']);

/** The longest run of characters that every match of this (alternation-free at top level) source contains. */
function longestLiteral(src: string): string {
  let best = '';
  for (const run of literalRuns(src)) if (run.length > best.length) best = run;
  if (best.length >= MIN_NEEDLE) return best;
  // No literal at this level: a mandatory group whose every alternative has one still pins nothing
  // down to a single string, so report none.
  return best;
}

/** Runs of at least MIN_NEEDLE literal characters that every match contains, in order. */
function literalRuns(src: string): string[] {
  const runs: string[] = [];
  let run = '';
  const flush = (): void => {
    if (run.length >= MIN_NEEDLE) runs.push(run);
    run = '';
  };
  walk(src, (literal, quantifier) => {
    if (literal === undefined || literal.charCodeAt(0) >= ALPHABET) {
      flush();
    } else if (quantifier === undefined) {
      run += literal;
    } else if (quantifier.min === 0) {
      flush();
    } else {
      // At least one copy is certain, but what follows may come after more copies.
      run += literal;
      flush();
    }
  });
  flush();
  return runs;
}

/** Sources of the groups that must match (not optional), at this level. */
function mandatoryGroups(src: string): string[] {
  const groups: string[] = [];
  walk(src, (_literal, quantifier, group) => {
    if (group !== undefined && (quantifier === undefined || quantifier.min > 0)) groups.push(group);
  });
  return groups;
}

/**
 * Visits the atoms of a source at one nesting level: a literal character, or
 * nothing (class, dot, anchor, group, escape class), with its quantifier, and
 * for groups their inner source (lookarounds excluded).
 */
function walk(
  src: string,
  visit: (literal: string | undefined, quantifier: { min: number; end: number } | undefined, group?: string) => void,
): void {
  let i = 0;
  while (i < src.length) {
    const ch = src[i] ?? '';
    let literal: string | undefined;
    let group: string | undefined;
    let next = i + 1;
    if (ch === '\\') {
      const esc = src[i + 1] ?? '';
      next = i + 2;
      if (!NON_LITERAL_ESCAPES.has(esc) && !/[1-9]/.test(esc)) literal = esc;
    } else if (ch === '[') {
      next = skipClass(src, i);
    } else if (ch === '(') {
      next = skipGroup(src, i);
      const inner = src.slice(i + 1, next - 1);
      if (inner.startsWith('?:')) group = inner.slice(2);
      else if (!inner.startsWith('?')) group = inner;
    } else if (ch !== '.' && ch !== '^' && ch !== '$' && ch !== '|') {
      literal = ch;
    }
    const quantifier = readQuantifier(src, next);
    visit(literal, quantifier, group);
    i = quantifier === undefined ? next : quantifier.end;
  }
}

function skipClass(src: string, open: number): number {
  for (let i = open + 1; i < src.length; i += 1) {
    if (src[i] === '\\') i += 1;
    else if (src[i] === ']') return i + 1;
  }
  return src.length;
}

function skipGroup(src: string, open: number): number {
  let depth = 0;
  for (let i = open; i < src.length; i += 1) {
    const ch = src[i];
    if (ch === '\\') i += 1;
    else if (ch === '[') i = skipClass(src, i) - 1;
    else if (ch === '(') depth += 1;
    else if (ch === ')') {
      depth -= 1;
      if (depth === 0) return i + 1;
    }
  }
  return src.length;
}

function readQuantifier(src: string, at: number): { min: number; end: number } | undefined {
  const ch = src[at];
  let min: number;
  let end: number;
  if (ch === '?' || ch === '*') {
    min = 0;
    end = at + 1;
  } else if (ch === '+') {
    min = 1;
    end = at + 1;
  } else if (ch === '{') {
    const m = /^\{(\d{1,6})(?:,\d{0,6})?\}/.exec(src.slice(at, at + 16));
    if (m === null || m[1] === undefined) return undefined;
    min = Number(m[1]);
    end = at + m[0].length;
  } else {
    return undefined;
  }
  // A lazy marker belongs to the quantifier.
  if (src[end] === '?') end += 1;
  return { min, end };
}

/**
 * Maps lines to the indices of the patterns that could match them. The
 * automaton is built once and never changes; each scan keeps its own scratch
 * state, so sharing one index between calls keeps `diagnose` pure.
 */
export class NeedleIndex {
  private readonly delta: Int32Array;
  /** For each automaton state, the needle ids that end there (directly or via suffix links). */
  private readonly outputs: ReadonlyArray<readonly number[]>;
  /** Needle id -> patterns that mention it. */
  private readonly users: ReadonlyArray<readonly number[]>;
  /** Pattern -> clauses of needle ids; every clause needs one needle present. */
  private readonly clauses: ReadonlyArray<ReadonlyArray<readonly number[]>>;
  private readonly always: readonly number[];
  private readonly needleCount: number;
  private readonly patternCount: number;
  /** Length of the longest needle: any needle crossing a join point lies within this many characters of it. */
  readonly longestNeedle: number;

  constructor(requirementsPerPattern: ReadonlyArray<ReadonlyArray<readonly string[]> | undefined>) {
    const ids = new Map<string, number>();
    const users: number[][] = [];
    const always: number[] = [];
    const clauses: number[][][] = [];
    requirementsPerPattern.forEach((requirements, pattern) => {
      if (requirements === undefined || requirements.length === 0) {
        always.push(pattern);
        clauses.push([]);
        return;
      }
      clauses.push(
        requirements.map((clause) =>
          clause.map((needle) => {
            let id = ids.get(needle);
            if (id === undefined) {
              id = ids.size;
              ids.set(needle, id);
              users.push([]);
            }
            const list = users[id];
            if (list !== undefined && !list.includes(pattern)) list.push(pattern);
            return id;
          }),
        ),
      );
    });

    this.longestNeedle = Math.max(0, ...[...ids.keys()].map((needle) => needle.length));
    const children: Array<Map<number, number>> = [new Map()];
    const direct: number[][] = [[]];
    for (const [needle, id] of ids) {
      let state = 0;
      for (let k = 0; k < needle.length; k += 1) {
        const c = needle.charCodeAt(k);
        let nextState = children[state]?.get(c);
        if (nextState === undefined) {
          nextState = children.length;
          children.push(new Map());
          direct.push([]);
          children[state]?.set(c, nextState);
        }
        state = nextState;
      }
      direct[state]?.push(id);
    }

    // Breadth-first: suffix links, merged outputs, and a full transition table (a DFA).
    const count = children.length;
    const delta = new Int32Array(count * ALPHABET);
    const link = new Int32Array(count);
    const outputs: number[][] = direct.map((list) => [...list]);
    const queue: number[] = [];
    for (let c = 0; c < ALPHABET; c += 1) {
      const child = children[0]?.get(c);
      if (child === undefined) continue;
      delta[c] = child;
      link[child] = 0;
      queue.push(child);
    }
    for (let head = 0; head < queue.length; head += 1) {
      const state = queue[head] ?? 0;
      const fallback = link[state] ?? 0;
      const inherited = outputs[fallback] ?? [];
      if (inherited.length > 0) outputs[state] = [...(outputs[state] ?? []), ...inherited];
      for (let c = 0; c < ALPHABET; c += 1) {
        const child = children[state]?.get(c);
        if (child === undefined) {
          delta[state * ALPHABET + c] = delta[fallback * ALPHABET + c] ?? 0;
        } else {
          delta[state * ALPHABET + c] = child;
          link[child] = delta[fallback * ALPHABET + c] ?? 0;
          queue.push(child);
        }
      }
    }
    this.delta = delta;
    this.outputs = outputs;
    this.users = users;
    this.clauses = clauses;
    this.always = always;
    this.needleCount = ids.size;
    this.patternCount = requirementsPerPattern.length;
  }

  /**
   * A scanner for one run: returns, per line, the pattern indices worth running
   * (all clauses satisfied by needles present, case-insensitively, or no requirement at all).
   */
  scanner(): (line: string) => number[] {
    const needleStamp = new Int32Array(this.needleCount);
    const patternStamp = new Int32Array(this.patternCount);
    let generation = 0;
    return (line) => {
      generation += 1;
      return this.candidates(line, needleStamp, patternStamp, generation);
    };
  }

  private candidates(line: string, needleStamp: Int32Array, patternStamp: Int32Array, gen: number): number[] {
    const touched: number[] = [];
    const delta = this.delta;
    let state = 0;
    for (let i = 0; i < line.length; i += 1) {
      let c = line.charCodeAt(i);
      if (c >= ALPHABET) {
        state = 0;
        continue;
      }
      if (c >= 65 && c <= 90) c += 32; // ASCII lower-case, as the needles are
      state = delta[state * ALPHABET + c] ?? 0;
      const out = this.outputs[state];
      if (out === undefined || out.length === 0) continue;
      for (const needle of out) {
        if (needleStamp[needle] === gen) continue;
        needleStamp[needle] = gen;
        for (const pattern of this.users[needle] ?? []) {
          if (patternStamp[pattern] === gen) continue;
          patternStamp[pattern] = gen;
          touched.push(pattern);
        }
      }
    }
    const found: number[] = [...this.always];
    for (const pattern of touched) {
      const clauses = this.clauses[pattern] ?? [];
      if (clauses.every((clause) => clause.some((needle) => needleStamp[needle] === gen))) found.push(pattern);
    }
    return found;
  }
}
