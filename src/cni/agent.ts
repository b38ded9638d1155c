/**
 * `meshcap cni agent`: the node DaemonSet's main process. It keeps the plugin
 * and its config entry in place (re-inserting the entry when the primary CNI
 * rewrites the file), is ready only while the effective config and binary are
 * right, writes the API fallback's kubeconfig, and on SIGTERM leaves all of
 * it in place: a rolling upgrade must not let mesh pods start uncaptured.
 * The node audit and repair loop plugs in through `AgentExtension`.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import type { EntryOptions } from './conflist.js';
import { checkNode, type ConfigMode, installBinary, installConfig, type NodeCheck } from './install.js';
import { renderKubeconfig } from './kube.js';

export interface AgentOptions {
  readonly confDir: string;
  readonly binDir: string;
  readonly source: string;
  readonly criSocket?: string;
  readonly metricsAddr?: { host: string; port: number };
  readonly entry?: EntryOptions;
  readonly mode?: ConfigMode;
  /** Host dir for the kubeconfig and token copy (outside the CNI conf dir). */
  readonly runDir: string;
  readonly serviceAccountDir: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly log: (level: 'info' | 'warn', line: string) => void;
  readonly pollMs?: number;
  readonly extensions?: readonly AgentExtension[];
}

/** The next issue's audit/repair loop: started with the agent, stopped with it, its metrics served beside ours. */
export interface AgentExtension {
  start(context: { readonly criSocket?: string; readonly log: AgentOptions['log'] }): void;
  stop(): Promise<void>;
  metrics(): string;
  /** Readiness problems this extension adds (empty when fine). */
  problems?(): readonly string[];
}

/** N re-insertions within a window: the primary CNI and the agent are fighting over the file. Pure. */
export class FightDetector {
  private readonly times: number[] = [];
  constructor(
    readonly threshold = 10,
    readonly windowMs = 60_000,
  ) {}
  /** Records a re-insertion; true when this one crosses the threshold. */
  record(now: number): boolean {
    this.times.push(now);
    while (this.times.length > 0 && this.times[0]! <= now - this.windowMs) this.times.shift();
    return this.times.length === this.threshold;
  }
  get recent(): number {
    return this.times.length;
  }
}

export interface AgentState {
  ready: boolean;
  check: NodeCheck | undefined;
  reinserts: number;
  /** Ready -> not ready: each rewrite that dropped the entry is one, however quickly it is re-inserted. */
  notReadyTransitions: number;
  fights: number;
  binaryInstalls: number;
  lastFightFile: string | undefined;
}

function writePrivate(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text, { mode: 0o600 });
  chmodSync(`${path}.tmp`, 0o600);
  renameSync(`${path}.tmp`, path);
}

export class Agent {
  readonly state: AgentState = { ready: false, check: undefined, reinserts: 0, notReadyTransitions: 0, fights: 0, binaryInstalls: 0, lastFightFile: undefined };
  private readonly fight = new FightDetector();
  private timer: NodeJS.Timeout | undefined;
  private watcher: FSWatcher | undefined;
  private server: Server | undefined;
  private installedOnce = false;
  private running = false;
  private pending = false;
  private lastProblems = '';
  private problemsNow: readonly string[] = ['starting'];

  constructor(readonly options: AgentOptions) {}

  async start(): Promise<void> {
    this.running = true;
    this.tick();
    // fs events make re-insertion immediate; the poll catches what inotify misses (bind-mount quirks, missed events).
    try {
      this.watcher = watch(this.options.confDir, () => this.soon());
    } catch (error) {
      this.options.log('warn', `cannot watch ${this.options.confDir} (${(error as Error).message}); polling only`);
    }
    this.timer = setInterval(() => this.tick(), this.options.pollMs ?? 500);
    for (const extension of this.options.extensions ?? []) extension.start({ ...(this.options.criSocket ? { criSocket: this.options.criSocket } : {}), log: this.options.log });
    if (this.options.metricsAddr) await this.serve(this.options.metricsAddr);
  }

  private soon(): void {
    if (this.pending || !this.running) return;
    this.pending = true;
    setImmediate(() => {
      this.pending = false;
      this.tick();
    });
  }

  tick(): void {
    if (!this.running) return;
    const { confDir, binDir, source, log } = this.options;
    // Each step on its own: a read-only bin dir must not stop the kubeconfig or the config entry.
    try {
      this.writeKubeconfig();
    } catch (error) {
      log('warn', `writing the API fallback's kubeconfig failed: ${(error as Error).message}`);
    }
    try {
      if (installBinary(source, binDir)) {
        this.state.binaryInstalls++;
        log('info', `installed ${join(binDir, 'meshcap-cni')}`);
      }
    } catch (error) {
      log('warn', `installing the plugin failed: ${(error as Error).message}`);
    }
    try {
      const mode = this.options.mode ?? 'chained';
      const outcome = installConfig(confDir, this.options.entry, mode);
      if (outcome.kind === 'inserted' && mode !== 'chained') {
        log('info', `${this.installedOnce ? 'updated' : 'wrote'} ${outcome.file}${mode === 'owned' ? " (the primary's plugins plus meshcap-cni)" : ''}`);
      } else if (outcome.kind === 'inserted') {
        if (this.installedOnce) {
          this.state.reinserts++;
          // The runtime read a config without the entry from the rewrite until now: NotReady for that span.
          this.observe(false, [`${outcome.file} was rewritten without the meshcap-cni entry`]);
          log('warn', `${outcome.file} was rewritten without the meshcap-cni entry: re-inserted it`);
          if (this.fight.record(Date.now())) {
            this.state.fights++;
            this.state.lastFightFile = outcome.file;
            log('warn', `config fight: ${outcome.file} lost the meshcap-cni entry ${this.fight.recent} times within a minute; another node component keeps rewriting it (Cilium: set cni.exclusive=false; or use a primary CNI that keeps chained plugins)`);
          }
        } else log('info', `inserted the meshcap-cni entry into ${outcome.file}${outcome.converted ? ` (converted from ${outcome.converted})` : ''}`);
      }
      if (outcome.kind !== 'no-config') this.installedOnce = true;
    } catch (error) {
      log('warn', `install step failed: ${(error as Error).message}`);
    }
    this.readiness();
  }

  /**
   * Readiness from the files as they are now (the binary's hash is cached): /readyz asks at request
   * time, so a probe between a primary's rewrite and the re-insertion answers 503.
   */
  readiness(): boolean {
    const { confDir, binDir, source } = this.options;
    const check = checkNode(confDir, binDir, source, this.options.mode ?? 'chained');
    const extra = (this.options.extensions ?? []).flatMap((e) => e.problems?.() ?? []);
    this.state.check = check;
    const ready = check.ready && extra.length === 0;
    this.observe(ready, [...check.problems, ...extra], check);
    return ready;
  }

  private observe(ready: boolean, problems: readonly string[], check?: NodeCheck): void {
    if (this.state.ready && !ready) this.state.notReadyTransitions++;
    this.state.ready = ready;
    this.problemsNow = problems;
    const text = [...problems, ...(check?.warnings ?? [])].join('; ');
    if (text === this.lastProblems) return;
    this.lastProblems = text;
    const warnings = check?.warnings ?? [];
    this.options.log(ready ? 'info' : 'warn', ready ? `ready: ${check?.firstFile} holds the meshcap-cni entry${warnings.length ? `; warning: ${warnings.join('; ')}` : ''}` : `not ready: ${text}`);
  }

  /** In a cluster: a token copy the kubeconfig names by tokenFile, refreshed when the projected token rotates. */
  private writeKubeconfig(): void {
    const { env, runDir, serviceAccountDir } = this.options;
    const host = env.KUBERNETES_SERVICE_HOST;
    const tokenPath = join(serviceAccountDir, 'token');
    if (!host || !existsSync(tokenPath)) return;
    mkdirSync(runDir, { recursive: true, mode: 0o700 });
    const tokenCopy = join(runDir, 'token');
    const token = readFileSync(tokenPath);
    if (!existsSync(tokenCopy) || !readFileSync(tokenCopy).equals(token)) {
      copyFileSync(tokenPath, `${tokenCopy}.tmp`);
      chmodSync(`${tokenCopy}.tmp`, 0o600);
      // rename: the plugin reads either the old or the new token, never half of one.
      renameSync(`${tokenCopy}.tmp`, tokenCopy);
    }
    const server = `https://${host.includes(':') ? `[${host}]` : host}:${env.KUBERNETES_SERVICE_PORT ?? '443'}`;
    const text = renderKubeconfig({ server, caData: readFileSync(join(serviceAccountDir, 'ca.crt'), 'utf8'), tokenFile: tokenCopy });
    const path = join(runDir, 'kubeconfig');
    if (!existsSync(path) || readFileSync(path, 'utf8') !== text) writePrivate(path, text);
  }

  metrics(): string {
    const ready = this.readiness();
    const s = this.state;
    const lines = [
      '# HELP meshcap_cni_ready 1 when the effective CNI config holds the meshcap-cni entry and the plugin binary matches.',
      '# TYPE meshcap_cni_ready gauge',
      `meshcap_cni_ready ${ready ? 1 : 0}`,
      '# HELP meshcap_cni_not_ready_transitions_total Times readiness went from ready to not ready (each rewrite of the config without the entry is one, until it is re-inserted).',
      '# TYPE meshcap_cni_not_ready_transitions_total counter',
      `meshcap_cni_not_ready_transitions_total ${s.notReadyTransitions}`,
      '# HELP meshcap_cni_config_reinserts_total Times the entry was re-inserted after the config was rewritten without it.',
      '# TYPE meshcap_cni_config_reinserts_total counter',
      `meshcap_cni_config_reinserts_total ${s.reinserts}`,
      '# HELP meshcap_cni_config_fights_total Times the re-insertions crossed the fight threshold (10 within a minute).',
      '# TYPE meshcap_cni_config_fights_total counter',
      `meshcap_cni_config_fights_total ${s.fights}`,
      '# HELP meshcap_cni_binary_installs_total Times the plugin executable was (re)installed.',
      '# TYPE meshcap_cni_binary_installs_total counter',
      `meshcap_cni_binary_installs_total ${s.binaryInstalls}`,
    ];
    return `${[lines.join('\n'), ...(this.options.extensions ?? []).map((e) => e.metrics().trimEnd())].filter((t) => t !== '').join('\n')}\n`;
  }

  private serve(addr: { host: string; port: number }): Promise<void> {
    this.server = createServer((req, res) => {
      if (req.url === '/readyz') {
        const ready = this.running && this.readiness();
        res.writeHead(ready ? 200 : 503, { 'Content-Type': 'text/plain' });
        res.end(ready ? 'ready\n' : `not ready: ${(this.running && this.problemsNow.length ? this.problemsNow : ['stopping']).join('; ')}\n`);
      } else if (req.url === '/healthz') {
        res.writeHead(200).end('ok\n');
      } else if (req.url === '/metrics') {
        res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4' });
        res.end(this.metrics());
      } else res.writeHead(404).end();
    });
    return new Promise((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(addr.port, addr.host, () => resolve());
    });
  }

  get address(): { port: number } | undefined {
    const a = this.server?.address();
    return a && typeof a === 'object' ? { port: a.port } : undefined;
  }

  /** SIGTERM: stop watching; the entry and the binary stay (an upgrade's new agent takes over). */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearInterval(this.timer);
    this.watcher?.close();
    await Promise.all((this.options.extensions ?? []).map((e) => e.stop()));
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
