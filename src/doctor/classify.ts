import { ConfigBlockAnalyzer } from './config-block.js';
import { IpRuleAnalyzer } from './ip-rules.js';
import { JobTableAnalyzer } from './job-table.js';
import { KNOWLEDGE, knowledgeFor } from './knowledge.js';
import { cleanLine, forEachLine, matchWindows, quote } from './lines.js';
import { MARKERS, QUOTABLE_MARKERS } from './markers.js';
import { PodStateAnalyzer } from './pod-state.js';
import { literalRequirements, NeedleIndex } from './prefilter.js';
import { SaveSectionAnalyzer } from './save-sections.js';
import type {
  Analyzer,
  Cause,
  CauseId,
  DiagnoseOptions,
  Diagnosis,
  Evidence,
  Finding,
  KnowledgeEntry,
  MarkerId,
  Reading,
  Signature,
} from './types.js';

/** Causes below this confidence are not claimed; if none reaches it the answer is `unknown`. */
export const REPORT_THRESHOLD = 0.35;
/** Weaker candidates still listed after `unknown`, as hints. */
const HINT_THRESHOLD = 0.1;
const MAX_HINTS = 3;
/** Lines remembered per signature: enough to quote, not a copy of a huge input. */
const HITS_PER_SIGNATURE = 3;
const DEFAULT_MAX_EVIDENCE = 8;
const DEFAULT_MAX_QUOTE = 200;
/** Configuration readings kept: a few blocks' worth. */
const MAX_READINGS = 12;

/** A line at least this long may have been wrapped; the next line is then also read as its continuation. */
const WRAP_MIN_LENGTH = 60;
/** How much of each side of a cut is joined: enough for any signature, bounded per line. */
const WRAP_SPAN = 160;
/** Lines that start a new record (timestamps, log prefixes, shell prompts, rule lines, describe fields), never a continuation. */
const NEW_RECORD = /^\s{0,8}(?:\d{4}[-/]\d\d[-/]\d\d|\[\s{0,8}\d|time=|level=|\{"|[IWEF]\d{4} |\+ |\$ |# |-[ANIPFXD] |:[A-Z]|\*[a-z]|[A-Z][A-Za-z ]{0,30}:(?:\s|$)|[a-z0-9-]{1,60}@[^\s]{1,60}[$#] )/;

/** `=== kubectl logs ... ===` style separators, as written by `--pod` gathering or by hand. */
export const SECTION_HEADER = /^={3,8} .{1,300} ={3,8}$/;

interface CompiledSignature {
  readonly entry: KnowledgeEntry;
  readonly sig: Signature;
}

/** One regex the line loop may run: a signature's pattern or one of a marker's patterns. */
export interface LinePattern {
  readonly re: RegExp;
  readonly signature?: number;
  readonly marker?: MarkerId;
}

// Compiled once; immutable, so sharing them keeps `diagnose` pure.
const SIGNATURES: readonly CompiledSignature[] = KNOWLEDGE.flatMap((entry) => entry.signatures.map((sig) => ({ entry, sig })));
/** Exported for the prefilter soundness test only. */
export const LINE_PATTERNS: readonly LinePattern[] = [
  ...SIGNATURES.map((s, index) => ({ re: s.sig.pattern, signature: index })),
  ...(Object.keys(MARKERS) as MarkerId[]).flatMap((marker) => MARKERS[marker].map((re) => ({ re, marker }))),
];
/** Exported for the prefilter soundness test only. */
export const NEEDLES = new NeedleIndex(LINE_PATTERNS.map((p) => literalRequirements(p.re)));

/**
 * Reads anything an operator pastes (container logs, `kubectl describe`,
 * `kubectl get`, iptables dumps, app logs) and returns the ranked likely
 * causes of a mesh traffic-capture failure. Pure: no I/O, no clock, no shared
 * state changed; one pass over the lines with bounded work per line.
 */
export function diagnose(input: string, options: DiagnoseOptions = {}): Diagnosis {
  const maxEvidence = Math.max(1, options.maxEvidencePerCause ?? DEFAULT_MAX_EVIDENCE);
  const maxQuote = Math.max(16, options.maxQuoteLength ?? DEFAULT_MAX_QUOTE);

  const hits: Evidence[][] = SIGNATURES.map(() => []);
  const markers = new Map<MarkerId, Evidence>();
  const analyzers: Analyzer[] = [new SaveSectionAnalyzer(), new PodStateAnalyzer(), new IpRuleAnalyzer(), new ConfigBlockAnalyzer(), new JobTableAnalyzer()];
  const candidatesOf = NEEDLES.scanner();

  /** Runs the candidate patterns on `windows`; records hits with `quoted` as their evidence. Returns the signatures hit. */
  const matchText = (
    scanned: string,
    windows: readonly string[],
    quoted: readonly Evidence[],
    skip?: ReadonlySet<number>,
  ): ReadonlySet<number> | undefined => {
    let hit: Set<number> | undefined;
    for (const index of candidatesOf(scanned)) {
      const pattern = LINE_PATTERNS[index];
      if (pattern === undefined) continue;
      if (pattern.marker !== undefined) {
        if (!markers.has(pattern.marker) && anyWindow(windows, pattern.re)) markers.set(pattern.marker, quoted[quoted.length - 1] ?? { line: 0, text: '' });
        continue;
      }
      if (pattern.signature === undefined || skip?.has(pattern.signature) === true) continue;
      const list = hits[pattern.signature];
      const sig = SIGNATURES[pattern.signature]?.sig;
      if (list === undefined || sig === undefined || list.length >= HITS_PER_SIGNATURE) continue;
      if (!anyWindow(windows, pattern.re)) continue;
      if (sig.notOnLine !== undefined && anyWindow(windows, sig.notOnLine)) continue;
      for (const e of quoted) if (list.length < HITS_PER_SIGNATURE && !list.some((x) => x.line === e.line)) list.push(e);
      (hit ??= new Set()).add(pattern.signature);
    }
    return hit;
  };

  let previous: Evidence | undefined;
  const lineCount = forEachLine(input, (lineNo, raw) => {
    const line = cleanLine(raw);
    if (line.length === 0) {
      previous = undefined;
      return;
    }
    if (SECTION_HEADER.test(line)) {
      for (const analyzer of analyzers) analyzer.boundary();
    }
    for (const analyzer of analyzers) analyzer.line(lineNo, line);
    const here: Evidence = { line: lineNo, text: line };
    const matched = matchText(line, matchWindows(line), [here]);
    // A long line cut by a terminal or a paste and continued on this one: match across the cut too.
    if (previous !== undefined && previous.text.length >= WRAP_MIN_LENGTH && !NEW_RECORD.test(line)) {
      const tail = previous.text.slice(-WRAP_SPAN);
      const head = line.slice(0, WRAP_SPAN);
      // One prefilter scan covers both joins: the spaced one in full, plus the seam of the unspaced one
      // (a needle that crosses the seam lies within the longest needle's length of it).
      const seam = `${tail.slice(-NEEDLES.longestNeedle)}${head.slice(0, NEEDLES.longestNeedle)}`;
      matchText(`${tail} ${head}\u0001${seam}`, [`${tail}${head}`, `${tail} ${head}`], [previous, here], matched);
    }
    previous = here;
  });

  const findings: Finding[] = [];
  const readings: Reading[] = [];
  for (const analyzer of analyzers) {
    const result = analyzer.finish();
    findings.push(...result.findings);
    for (const r of result.readings ?? []) {
      if (readings.length < MAX_READINGS) readings.push({ text: r.text, evidence: { line: r.evidence.line, text: quote(r.evidence.text, maxQuote) } });
    }
    for (const hit of result.markers) {
      if (!markers.has(hit.marker)) markers.set(hit.marker, hit.evidence);
    }
  }

  const scored = score(hits, findings, markers);
  const causes = rank(scored, maxEvidence, maxQuote);
  readings.sort((a, b) => a.evidence.line - b.evidence.line);
  return { causes, lines: lineCount, readings };
}

function anyWindow(windows: readonly string[], pattern: RegExp): boolean {
  for (const window of windows) {
    if (pattern.test(window)) return true;
  }
  return false;
}

interface GroupScore {
  weight: number;
  evidence: Evidence[];
}

interface ScoredCause {
  readonly entry: KnowledgeEntry;
  readonly order: number;
  readonly score: number;
  readonly groups: readonly GroupScore[];
}

function score(
  hitsPerSignature: readonly (readonly Evidence[])[],
  findings: readonly Finding[],
  markers: ReadonlyMap<MarkerId, Evidence>,
): ScoredCause[] {
  const perCause = new Map<CauseId, Map<string, GroupScore>>();
  const offer = (cause: CauseId, key: string, weight: number, evidence: Evidence[]): void => {
    let groups = perCause.get(cause);
    if (groups === undefined) {
      groups = new Map();
      perCause.set(cause, groups);
    }
    const current = groups.get(key);
    if (current === undefined || weight > current.weight) groups.set(key, { weight, evidence });
  };

  SIGNATURES.forEach(({ entry, sig }, index) => {
    const hits = hitsPerSignature[index] ?? [];
    if (hits.length === 0) return;
    if (sig.unless?.some((m) => markers.has(m)) === true) return;
    let context: Evidence | undefined;
    if (sig.with !== undefined) {
      const seen = sig.with.filter((m) => markers.has(m));
      if (seen.length === 0) return;
      // Quote the context that adds a line of its own, not one the hits already show.
      const hitLines = new Set(hits.map((h) => h.line));
      const quotable = seen
        .filter((m) => QUOTABLE_MARKERS.has(m))
        .map((m) => markers.get(m))
        .filter((e): e is Evidence => e !== undefined);
      context = quotable.find((e) => !hitLines.has(e.line)) ?? quotable[0];
    }
    const evidence = context === undefined ? [...hits] : [...hits, context];
    offer(entry.id, sig.group ?? sig.name, sig.weight, evidence);
  });
  for (const finding of findings) offer(finding.cause, finding.name, finding.weight, [...finding.evidence]);

  const scored: ScoredCause[] = [];
  KNOWLEDGE.forEach((entry, order) => {
    const groups = perCause.get(entry.id);
    if (groups === undefined || entry.id === 'unknown') return;
    let miss = 1;
    for (const group of groups.values()) miss *= 1 - clamp(group.weight);
    scored.push({ entry, order, score: 1 - miss, groups: [...groups.values()] });
  });
  return scored;
}

function rank(scored: readonly ScoredCause[], maxEvidence: number, maxQuote: number): Cause[] {
  const ordered = [...scored].sort((a, b) => b.score - a.score || a.order - b.order);
  const claimed = ordered.filter((s) => s.score >= REPORT_THRESHOLD);
  if (claimed.length > 0) return claimed.map((s) => toCause(s.entry, s.score, s.groups, maxEvidence, maxQuote));

  const best = ordered[0]?.score ?? 0;
  const unknown = toCause(knowledgeFor('unknown'), Math.max(0.5, 1 - best), [], maxEvidence, maxQuote);
  const hints = ordered
    .filter((s) => s.score >= HINT_THRESHOLD)
    .slice(0, MAX_HINTS)
    .map((s) => toCause(s.entry, s.score, s.groups, maxEvidence, maxQuote));
  return [unknown, ...hints];
}

function toCause(
  entry: KnowledgeEntry,
  score: number,
  groups: readonly GroupScore[],
  maxEvidence: number,
  maxQuote: number,
): Cause {
  return {
    id: entry.id,
    title: entry.title,
    confidence: Math.round(Math.min(0.99, clamp(score)) * 100) / 100,
    evidence: pickEvidence(groups, maxEvidence, maxQuote),
    explanation: entry.explanation,
    fix: entry.fix,
    references: entry.references,
  };
}

/** Strongest groups get their lines in first; the kept lines are then shown in input order. */
function pickEvidence(groups: readonly GroupScore[], max: number, maxQuote: number): Evidence[] {
  const byWeight = [...groups].sort((a, b) => b.weight - a.weight);
  const kept = new Map<number, Evidence>();
  for (const group of byWeight) {
    for (const item of group.evidence) {
      if (kept.size >= max) break;
      if (!kept.has(item.line)) kept.set(item.line, { line: item.line, text: quote(item.text, maxQuote) });
    }
  }
  return [...kept.values()].sort((a, b) => a.line - b.line);
}

function clamp(value: number): number {
  return Math.min(1, Math.max(0, value));
}
