/**
 * Throwaway network labs for real-kernel tests: a "pod" namespace and an
 * "outside" namespace joined by a veth pair, using only 198.18.0.0/15 and
 * 2001:db8::/32. Every namespace and process is removed on exit, pass or fail.
 * The machine's own namespace is never touched.
 */
import { spawn, spawnSync } from 'node:child_process';
import { MESHCAP_BIN } from './paths.js';
import { startProbeServer } from './probe-server.js';

export const POD_V4 = '198.18.0.2';
export const OUTSIDE_V4 = '198.18.0.1';
/** A second outside network, for excluded-CIDR tests. */
export const FAR_V4 = '198.18.1.1';
export const POD_V6 = '2001:db8::2';
export const OUTSIDE_V6 = '2001:db8::1';

const live = new Set<string>();
let counter = 0;

function deleteNamespaces(names: Iterable<string>) {
  for (const name of names) {
    spawnSync('ip', ['netns', 'del', name]);
    live.delete(name);
  }
}
process.on('exit', () => deleteNamespaces([...live]));
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    deleteNamespaces([...live]);
    process.exit(130);
  });
}

export interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export function runAsync(file: string, args: readonly string[], options: { input?: string; env?: Record<string, string> } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { env: { ...process.env, ...options.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
    child.on('error', (error) => resolve({ code: 127, stdout, stderr: stderr + error.message }));
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : -1), stdout, stderr }));
  });
}

function must(file: string, args: readonly string[]): string {
  const result = spawnSync(file, args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${file} ${args.join(' ')} failed: ${result.stderr}`);
  return result.stdout;
}

export interface ProbeAnswer {
  readonly ok: boolean;
  readonly reply?: string;
  readonly error?: string;
}

export class Lab {
  readonly services: { stop(): Promise<void> }[] = [];

  private constructor(
    readonly pod: string,
    readonly outside: string,
  ) {}

  /** Creates the namespaces, the veth pair and the addresses; IPv6 addresses without DAD so they are usable at once. */
  static create(label: string): Lab {
    const id = `${process.pid % 100000}-${++counter}`;
    const lab = new Lab(`mc-${label}-${id}-p`, `mc-${label}-${id}-o`);
    for (const ns of [lab.pod, lab.outside]) {
      must('ip', ['netns', 'add', ns]);
      live.add(ns);
    }
    const cmds: string[][] = [
      ['-n', lab.pod, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', lab.outside],
      ['-n', lab.pod, 'addr', 'add', `${POD_V4}/24`, 'dev', 'eth0'],
      ['-n', lab.pod, '-6', 'addr', 'add', `${POD_V6}/64`, 'dev', 'eth0', 'nodad'],
      ['-n', lab.outside, 'addr', 'add', `${OUTSIDE_V4}/24`, 'dev', 'eth0'],
      ['-n', lab.outside, 'addr', 'add', `${FAR_V4}/24`, 'dev', 'eth0'],
      ['-n', lab.outside, '-6', 'addr', 'add', `${OUTSIDE_V6}/64`, 'dev', 'eth0', 'nodad'],
      ['-n', lab.pod, 'link', 'set', 'lo', 'up'],
      ['-n', lab.pod, 'link', 'set', 'eth0', 'up'],
      ['-n', lab.outside, 'link', 'set', 'lo', 'up'],
      ['-n', lab.outside, 'link', 'set', 'eth0', 'up'],
      ['-n', lab.pod, 'route', 'add', '198.18.1.0/24', 'via', OUTSIDE_V4],
      // A pod has a default route; without one, connects to captured addresses fail before netfilter.
      ['-n', lab.pod, 'route', 'add', 'default', 'via', OUTSIDE_V4],
      ['-n', lab.pod, '-6', 'route', 'add', 'default', 'via', OUTSIDE_V6],
    ];
    try {
      for (const args of cmds) must('ip', args);
    } catch (error) {
      lab.destroySync();
      throw error;
    }
    return lab;
  }

  /** Runs a command inside one of the lab's namespaces. */
  exec(ns: string, args: readonly string[], options: { input?: string; env?: Record<string, string> } = {}): Promise<Run> {
    return runAsync('ip', ['netns', 'exec', ns, ...args], options);
  }

  /** Runs meshcap in the pod namespace, as istio-init would. */
  meshcap(args: readonly string[], options: { env?: Record<string, string> } = {}): Promise<Run> {
    return this.exec(this.pod, [process.execPath, MESHCAP_BIN, ...args], options);
  }

  /** Starts a probe server in a namespace; resolves once it listens. */
  async serve(ns: string, ports: readonly number[], tag: string): Promise<void> {
    this.services.push(await startProbeServer(['ip', 'netns', 'exec', ns], ports, tag));
  }

  /** One TCP connection from a namespace, optionally as another uid/gid; the probe server's answer. */
  async connect(ns: string, host: string, port: number, as: { uid?: number; gid?: number } = {}): Promise<ProbeAnswer> {
    const args = ['probe-connect', host, String(port), '--timeout', '3000'];
    if (as.uid !== undefined) args.push('--uid', String(as.uid), '--gid', String(as.gid ?? as.uid));
    const result = await this.exec(ns, [process.execPath, MESHCAP_BIN, ...args]);
    try {
      return JSON.parse(result.stdout) as ProbeAnswer;
    } catch {
      return { ok: false, error: `probe-connect exit ${result.code}: ${result.stderr}` };
    }
  }

  /** The namespace's rules for one backend and family, without comments and counters. */
  async save(variant: 'legacy' | 'nft', family: 4 | 6 = 4): Promise<string> {
    const binary = `${family === 4 ? 'iptables' : 'ip6tables'}-${variant}-save`;
    const result = await this.exec(this.pod, [binary]);
    return normaliseSave(result.stdout);
  }

  async nftRuleset(): Promise<string> {
    const result = await this.exec(this.pod, ['nft', 'list', 'ruleset']);
    return result.stdout.replace(/counter packets \d+ bytes \d+/g, 'counter');
  }

  async readFile(ns: string, path: string): Promise<string> {
    return (await this.exec(ns, ['cat', path])).stdout;
  }

  async destroy(): Promise<void> {
    await Promise.all(this.services.splice(0).map((s) => s.stop()));
    this.destroySync();
  }

  private destroySync(): void {
    deleteNamespaces([this.pod, this.outside]);
  }
}

/** Runs a body in a fresh lab, destroyed afterwards, pass or fail. */
export async function withLab(label: string, body: (lab: Lab) => Promise<void>): Promise<void> {
  const lab = Lab.create(label);
  try {
    await body(lab);
  } finally {
    await lab.destroy();
  }
}

/** Without comments, counters, and tables that hold nothing but their built-in chains. */
export function normaliseSave(text: string): string {
  const tables = text
    .split('\n')
    .filter((line) => !line.startsWith('#'))
    .map((line) => line.replace(/\[\d+:\d+\]/g, '[0:0]'))
    .join('\n')
    .split(/^(?=\*)/m);
  return tables.filter((table) => !table.startsWith('*') || /^(-A |:(?!(PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) ))/m.test(table)).join('');
}

/** Lines of a save that belong to the mesh (chains and rules), for counting. */
export function meshLines(save: string): string[] {
  return save.split('\n').filter((line) => /ISTIO_/.test(line));
}

export const isRoot = () => process.getuid?.() === 0;
export const hasTool = (name: string) => spawnSync('sh', ['-c', `command -v ${name}`]).status === 0;

/** Integration tests need root and the tools; in CI they must run. */
export function labSkipReason(): string | false {
  const missing = ['ip', 'iptables-legacy-save', 'iptables-nft-save', 'nft'].filter((tool) => !hasTool(tool));
  const reason = !isRoot() ? 'needs root (creates network namespaces)' : missing.length ? `missing tools: ${missing.join(', ')}` : '';
  if (!reason) return false;
  if (process.env.CI === 'true') throw new Error(`CI=true but namespace tests cannot run: ${reason}`);
  return `skipped: ${reason}`;
}
