/**
 * One audit of a node: every sandbox the runtime lists, the injected ones
 * only, each read in its own network namespace, classified, and (when asked)
 * repaired in place with the capture engine, then read again. Nothing here
 * opens a connection: reading is iptables-save / nft list, repairing is the
 * engine's restore. The imperative shell around classify and policy.
 */
import type { System } from '../backend/system.js';
import type { Logger } from '../log.js';
import { MeshcapError } from '../errors.js';
import { runCapture } from '../reconcile/engine.js';
import { readIptablesOnly, readPolicyRouting } from '../status/gather.js';
import { type AuditRead, classifyCapture } from './classify.js';
import { type Desired, desiredCapture } from './desired.js';
import { netnsSystem } from './netns-system.js';
import { DEFAULT_POLICY, type RepairHistory, type RepairPolicy, decide, pruneHistory, recordRepair } from './policy.js';
import type { PodAudit, PodVerdict, Sandbox } from './types.js';
import type { InjectSettings } from '../inject/settings.js';
import type { CaptureConfig } from '../config/types.js';

export interface AuditDeps {
  /** The node's System: the audit runs there and enters each pod's namespace. */
  readonly sys: System;
  readonly log: Logger;
  /** The node's sandboxes (the CRI, or a stand-in in tests). */
  readonly sandboxes: () => Promise<readonly Sandbox[]>;
  readonly now?: () => number;
  /** How a pod's namespace is entered; netnsSystem unless a test says otherwise. */
  readonly enter?: (sys: System, netnsPath: string) => Promise<System>;
}

export interface AuditOptions {
  readonly repair: boolean;
  readonly policy?: RepairPolicy;
  /** Repairs so far, per sandbox: kept by the caller across audits (the agent in memory, the CLI in a file). */
  readonly history?: RepairHistory;
  /** Pods read at once: reading is a few short processes per pod. */
  readonly concurrency?: number;
  /** The injector's install settings (ports, proxy uid, native nftables): the desired capture depends on them. */
  readonly settings?: InjectSettings;
}

export interface AuditResult {
  /** Sorted by namespace, then pod name. */
  readonly pods: readonly PodAudit[];
  readonly startedAt: number;
  readonly durationMs: number;
}

export async function auditNode(deps: AuditDeps, options: AuditOptions): Promise<AuditResult> {
  const now = deps.now ?? Date.now;
  const startedAt = now();
  const policy = options.policy ?? DEFAULT_POLICY;
  const history = options.history ?? new Map();
  const all = await deps.sandboxes();
  const targets = all.flatMap((sandbox) => {
    if (!sandbox.ready) return [];
    const desired = desiredCapture(sandbox, options.settings);
    return desired.kind === 'not-injected' ? [] : [{ sandbox, desired }];
  });
  const pods = await mapLimit(targets, options.concurrency ?? 4, ({ sandbox, desired }) => auditPod(deps, sandbox, desired, { ...options, policy, history, now }));
  pruneHistory(history, new Set(targets.map((t) => t.sandbox.id)), now(), policy);
  pods.sort((a, b) => a.namespace.localeCompare(b.namespace) || a.pod.localeCompare(b.pod) || a.sandboxId.localeCompare(b.sandboxId));
  return { pods, startedAt, durationMs: now() - startedAt };
}

interface PodContext extends AuditOptions {
  readonly policy: RepairPolicy;
  readonly history: RepairHistory;
  readonly now: () => number;
}

async function auditPod(deps: AuditDeps, sandbox: Sandbox, desired: Exclude<Desired, { kind: 'not-injected' }>, ctx: PodContext): Promise<PodAudit> {
  const base = { namespace: sandbox.namespace, pod: sandbox.name, sandboxId: sandbox.id, layout: desired.layout };
  if (desired.kind === 'invalid') return { ...base, state: 'unreadable', details: [`the annotations do not describe a capture: ${desired.problem}`] };
  if (!sandbox.netnsPath) return { ...base, state: 'unreadable', details: ['the runtime reports no network namespace for this sandbox'] };
  const enter = deps.enter ?? netnsSystem;
  const look = async (): Promise<PodVerdict> => {
    try {
      const sys = await enter(deps.sys, sandbox.netnsPath!);
      return classifyCapture(await readForAudit(sys, desired.config.mode === 'TPROXY'), desired.config, sandbox.addresses);
    } catch (error) {
      return { state: 'unreadable', details: [describe(error)] };
    }
  };
  const found = await look();
  const decision = decide(found, sandbox.id, ctx.history, ctx.now(), ctx.policy);
  if (decision.kind === 'fight') return { ...base, ...decision.verdict };
  if (decision.kind === 'leave' || !ctx.repair) return { ...base, ...found };

  recordRepair(ctx.history, sandbox.id, ctx.now(), ctx.policy);
  let message: string | undefined;
  try {
    const sys = await enter(deps.sys, sandbox.netnsPath);
    const report = await runCapture(repairConfig(desired.config, found), { sys, log: deps.log });
    message = `repaired in ${report.backend}`;
    deps.log.info(`${sandbox.namespace}/${sandbox.name}: ${found.state}, ${message}`);
  } catch (error) {
    message = describe(error);
    deps.log.warn(`${sandbox.namespace}/${sandbox.name}: repair of ${found.state} capture failed: ${message}`);
  }
  const after = await look();
  const result = after.state === 'ok' ? 'ok' : 'failed';
  return { ...base, ...after, repair: { before: found.state, result, ...(message ? { message } : {}) } };
}

/**
 * The desired capture, written where the pod's capture already lives: a
 * partial or drifted capture is repaired in its own backend (pinned, so the
 * engine's detection cannot move it); a missing one goes where the install
 * settings and the engine's detection put a new one.
 */
function repairConfig(config: CaptureConfig, found: PodVerdict): CaptureConfig {
  const pinnedBy = `the audit: the pod's capture is in ${found.holder}`;
  if (found.holder === 'nftables') return { ...config, nativeNftables: true };
  if (found.holder === 'iptables-legacy') return { ...config, nativeNftables: false, backend: 'legacy', backendPinnedBy: pinnedBy };
  if (found.holder === 'iptables-nft') return { ...config, nativeNftables: false, backend: 'nft', backendPinnedBy: pinnedBy };
  return config;
}

/** The three rule sources, and policy routing only where TPROXY needs it. */
export async function readForAudit(sys: System, tproxy: boolean): Promise<AuditRead> {
  const [tables, routing] = await Promise.all([readIptablesOnly(sys), tproxy ? readPolicyRouting(sys) : { ipRules: {}, routeTables: {} }]);
  return { ...tables, ...routing };
}

function describe(error: unknown): string {
  if (error instanceof MeshcapError) return `${error.what}: ${error.why} (fix: ${error.fix})`;
  return error instanceof Error ? error.message : String(error);
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
