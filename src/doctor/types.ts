/** Shapes shared by the doctor's knowledge base, classifier, analyzers and output. */

/** Stable cause ids: printed, put in JSON and named in fixtures; never rename one. */
export const CAUSE_IDS = [
  'rerun-existing-chains',
  'nat-table-unavailable',
  'backend-mismatch',
  'missing-extension',
  'permission-denied',
  'xtables-lock',
  'ipv6-unavailable',
  'binary-missing',
  'nftables-unsupported',
  'selinux-denied',
  'validation-failed',
  'tproxy-route-exists',
  'invalid-config',
  'proxy-not-ready',
  'sidecar-blocks-job-completion',
  'iptables-userspace-bug',
  'cni-not-applied',
  'init-container-blocked',
  'control-plane-unready',
  'cni-api-unavailable',
  'cni-node-config',
  'cni-plugin-failed',
  'cni-name-service',
  'unknown',
] as const;

export type CauseId = (typeof CAUSE_IDS)[number];

/** Context seen anywhere in the input; some signatures only count next to it. */
export type MarkerId =
  | 'mesh-chain-create'
  | 'chain-exists'
  | 'restore-line-failed'
  | 'init-crashloop'
  | 'mesh-init'
  | 'sidecar'
  | 'tproxy'
  | 'job'
  | 'cni'
  | 'selinux'
  | 'must-be-root'
  | 'nonroot-shell'
  | 'xtables-lock'
  | 'ip6tables'
  | 'nft-binary-missing'
  | 'nf-tables-version'
  | 'job-table'
  | 'app-init-container'
  | 'webhook-call'
  | 'probe-unredirected';

/** One quoted input line. `line` is 1-based. */
export interface Evidence {
  readonly line: number;
  readonly text: string;
}

/** A per-line pattern with its weight in the evidence for one cause. */
export interface Signature {
  /** Stable name, for tests and for reading the knowledge base. */
  readonly name: string;
  /** Must be linear: bounded quantifiers only (the knowledge test enforces it). */
  readonly pattern: RegExp;
  /** How strongly one hit points at the cause, 0..1. */
  readonly weight: number;
  /** Counts only if at least one of these markers was seen somewhere in the input. */
  readonly with?: readonly MarkerId[];
  /** Ignored if any of these markers was seen. */
  readonly unless?: readonly MarkerId[];
  /** Ignored on lines that also match this (e.g. the IPv6 twin of an IPv4 message). */
  readonly notOnLine?: RegExp;
  /** Signatures sharing a group count once, with the highest weight that applies. */
  readonly group?: string;
}

export interface KnowledgeEntry {
  readonly id: CauseId;
  readonly title: string;
  readonly signatures: readonly Signature[];
  readonly explanation: string;
  readonly fix: readonly string[];
  readonly references: readonly string[];
}

/** Something a structural analyzer concluded, beyond single-line patterns. */
export interface Finding {
  readonly cause: CauseId;
  /** Group key, like Signature.group: one finding per key counts. */
  readonly name: string;
  readonly weight: number;
  readonly evidence: readonly Evidence[];
}

export interface MarkerHit {
  readonly marker: MarkerId;
  readonly evidence: Evidence;
}

/** What a printed configuration means or what meshcap's parser rejects in it, with the line it rests on. */
export interface Reading {
  readonly text: string;
  readonly evidence: Evidence;
}

export interface AnalyzerResult {
  findings: Finding[];
  markers: MarkerHit[];
  readings?: Reading[];
}

/** A stateful reader fed every line once, in order. */
export interface Analyzer {
  line(lineNo: number, text: string): void;
  /** A `=== header ===` line or similar: whatever was open is finished. */
  boundary(): void;
  finish(): AnalyzerResult;
}

export interface Cause {
  readonly id: CauseId;
  readonly title: string;
  /** 0..1, two decimals. */
  readonly confidence: number;
  readonly evidence: readonly Evidence[];
  readonly explanation: string;
  readonly fix: readonly string[];
  readonly references: readonly string[];
}

export interface Diagnosis {
  /** Best first; never empty. */
  readonly causes: readonly Cause[];
  /** How many input lines were read. */
  readonly lines: number;
  /** The capture configuration the input printed, read with meshcap's own parser (may be empty). */
  readonly readings: readonly Reading[];
}

export interface DiagnoseOptions {
  /** Evidence lines kept per cause (default 8). */
  readonly maxEvidencePerCause?: number;
  /** Quoted lines are cut to this many characters (default 200). */
  readonly maxQuoteLength?: number;
}
