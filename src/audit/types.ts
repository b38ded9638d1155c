/** The audit's vocabulary: what a sandbox is to it, and what it concludes about one. Pure data. */

/** The six states of the issue, plus `unreadable` when the pod's namespace could not be read at all. */
export type CaptureState = 'ok' | 'missing' | 'partial' | 'drifted' | 'duplicated-backend' | 'foreign-conflict' | 'unreadable';

export const CAPTURE_STATES: readonly CaptureState[] = ['ok', 'missing', 'partial', 'drifted', 'duplicated-backend', 'foreign-conflict', 'unreadable'];

/** The states a repair (the engine, in place) is allowed to fix. */
export const REPAIRABLE: ReadonlySet<CaptureState> = new Set(['missing', 'partial', 'drifted']);

/** One pod sandbox as the runtime reports it (CRI ListPodSandbox + PodSandboxStatus verbose). */
export interface Sandbox {
  readonly id: string;
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  /** Only READY sandboxes have a network namespace worth auditing. */
  readonly ready: boolean;
  readonly annotations: Readonly<Record<string, string>>;
  /** Path of the sandbox's network namespace, from the runtime spec. */
  readonly netnsPath?: string;
  /** The pod's addresses in the runtime's order (primary first): they decide IPv6 as they do for istio-init. */
  readonly addresses: readonly string[];
}

/** Where the capture of an injected pod is meant to come from. */
export type Layout = 'cni' | 'init-container';

export interface PodVerdict {
  readonly state: CaptureState;
  /** What differs, one line each; empty for ok. */
  readonly details: readonly string[];
  /** The one backend holding mesh rules, when exactly one does: a repair keeps the capture there. */
  readonly holder?: 'iptables-legacy' | 'iptables-nft' | 'nftables';
  /** Rules of other tools in the pod (not shown for ok pods): named when something keeps rewriting the capture. */
  readonly foreignRules?: readonly string[];
}

export interface PodAudit extends PodVerdict {
  readonly namespace: string;
  readonly pod: string;
  readonly sandboxId: string;
  readonly layout: Layout;
  /** Set when a repair ran in this audit: what was found before it, and how it went. */
  readonly repair?: { readonly before: CaptureState; readonly result: 'ok' | 'failed'; readonly message?: string };
}
