/**
 * The agent's audit loop: one audit at start, then one every interval (never
 * two at once; a slow audit delays the next instead of piling up), repairing
 * in place when asked, with the repair history kept in memory for the fight
 * window. Serves the metrics text and a readiness problem when the runtime
 * cannot be listed. Plugs into `meshcap cni agent` as an extension.
 */
import type { System } from '../backend/system.js';
import type { Logger } from '../log.js';
import type { InjectSettings } from '../inject/settings.js';
import type { SandboxSource } from './inventory.js';
import { criSandboxes } from './inventory.js';
import { AuditMetrics } from './metrics.js';
import { DEFAULT_POLICY, type RepairHistory, type RepairPolicy } from './policy.js';
import { type AuditResult, auditNode } from './run.js';

export type RepairMode = 'off' | 'in-place';

export const DEFAULT_AUDIT_INTERVAL_S = 30;

export interface AuditLoopOptions {
  readonly intervalSeconds: number;
  readonly repair: RepairMode;
  readonly sys: System;
  readonly openCri: (socket: string) => Promise<SandboxSource & { close(): void }>;
  readonly policy?: RepairPolicy;
  readonly settings?: InjectSettings;
  /** Called after each audit (tests and logs watch the states through it). */
  readonly onAudit?: (result: AuditResult) => void;
  readonly now?: () => number;
}

type AgentLog = (level: 'info' | 'warn', line: string) => void;

export class AuditLoop {
  readonly metricsState = new AuditMetrics();
  private readonly history: RepairHistory = new Map();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private cri: (SandboxSource & { close(): void }) | undefined;
  private lastError: string | undefined;
  /** The states of the last audit, for logs of state changes. */
  private lastStates = new Map<string, string>();

  constructor(private readonly options: AuditLoopOptions) {}

  start(context: { readonly criSocket?: string; readonly log: AgentLog }): void {
    const socket = context.criSocket;
    if (!socket) {
      this.lastError = 'no --cri-socket: the audit cannot list the node\'s pods';
      context.log('warn', `audit: ${this.lastError}`);
      return;
    }
    const log = loggerOf(context.log);
    const tick = () => {
      this.running = this.auditOnce(socket, log).finally(() => {
        this.running = undefined;
        if (!this.stopped) this.timer = setTimeout(tick, this.options.intervalSeconds * 1000);
      });
    };
    tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
    this.cri?.close();
    this.cri = undefined;
  }

  metrics(): string {
    return this.metricsState.render();
  }

  /** Why the last audit could not run, if it could not (the agent stays ready: the audit is not on the pod-start path). */
  lastProblem(): string | undefined {
    return this.lastError;
  }

  private async auditOnce(socket: string, log: Logger): Promise<void> {
    const now = this.options.now ?? Date.now;
    const started = now();
    try {
      this.cri ??= await this.options.openCri(socket);
      const cri = this.cri;
      const result = await auditNode(
        { sys: this.options.sys, log, sandboxes: () => criSandboxes(cri), now },
        {
          repair: this.options.repair === 'in-place',
          history: this.history,
          policy: this.options.policy ?? DEFAULT_POLICY,
          ...(this.options.settings ? { settings: this.options.settings } : {}),
        },
      );
      this.metricsState.audited(result.pods, now(), result.durationMs);
      this.lastError = undefined;
      const states = new Map(result.pods.map((p) => [`${p.namespace}/${p.pod}`, p.state]));
      for (const pod of result.pods) {
        const key = `${pod.namespace}/${pod.pod}`;
        if (this.lastStates.get(key) !== pod.state || pod.repair) {
          const line = `audit: ${key} ${pod.repair ? `${pod.repair.before} -> repaired -> ` : ''}${pod.state}${pod.details.length ? `: ${pod.details.join('; ')}` : ''}`;
          if (pod.state === 'ok') log.info(line);
          else log.warn(line);
        }
      }
      this.lastStates = states;
      this.options.onAudit?.(result);
    } catch (error) {
      this.lastError = error instanceof Error ? error.message : String(error);
      this.metricsState.failed(now(), now() - started);
      log.warn(`audit: ${this.lastError}`);
      // A runtime that restarted needs a new connection.
      this.cri?.close();
      this.cri = undefined;
    }
  }
}

function loggerOf(log: AgentLog): Logger {
  return { debug: () => {}, info: (m) => log('info', m), warn: (m) => log('warn', m), error: (m) => log('warn', m), fatal: (m) => log('warn', m.trimEnd()) };
}
