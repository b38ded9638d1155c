/**
 * A node for CNI tests, without a runtime: a network namespace that plays the
 * node, Debian's real CNI plugins (bridge + host-local, portmap, loopback) in
 * a bin dir, a conf dir, and a driver that runs a conflist the way libcni
 * does (each plugin in turn, in the node's netns, with env and stdin, the
 * previous result passed on; DEL in reverse). meshcap-cni is put in by
 * `meshcap cni install --once`. The PATH plugins get has no `node` on it.
 * Addresses are 198.18.0.0/15 only; everything is removed on exit.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { runCli } from './cli.js';
import { REPO_ROOT } from './paths.js';
import { currentSingleExecutable, SINGLE_EXECUTABLE } from './single-executable.js';
import { runAsync, type Run } from './netns.js';

export const DEBIAN_CNI = '/usr/lib/cni';
/** meshcap's single executable: `meshcap cni install` copies it as meshcap-cni. */
export const SEA = SINGLE_EXECUTABLE;

const liveNamespaces = new Set<string>();
const liveDirs = new Set<string>();
function cleanup() {
  for (const ns of liveNamespaces) spawnSync('ip', ['netns', 'del', ns]);
  for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
  liveNamespaces.clear();
  liveDirs.clear();
}
process.on('exit', cleanup);

/**
 * The plugin as the runtime runs it: the single executable by the name meshcap-cni (a hard link to
 * dist/sea/meshcap, which is what `meshcap cni install` copies), built first when missing or stale.
 */
export function ensurePlugin(): string {
  const sea = currentSingleExecutable();
  if ('problem' in sea) throw new Error(`building the single executable (the plugin) failed: ${sea.problem}`);
  const plugin = join(REPO_ROOT, 'dist', 'sea', 'cni', 'meshcap-cni');
  if (statSync(plugin, { throwIfNoEntry: false })?.ino !== statSync(sea.path).ino) {
    mkdirSync(dirname(plugin), { recursive: true });
    rmSync(plugin, { force: true });
    linkSync(sea.path, plugin);
  }
  return plugin;
}

export function cniSkipReason(): string | false {
  const missing = ['bridge', 'host-local', 'portmap', 'loopback'].filter((p) => !existsSync(join(DEBIAN_CNI, p)));
  const tools = ['ip', ...NODE_TOOLS, 'iptables-nft-save', 'iptables-legacy-save'].filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
  const reason = process.getuid?.() !== 0 ? 'needs root' : missing.length ? `containernetworking-plugins missing (${missing.join(', ')})` : tools.length ? `missing tools: ${tools.join(', ')}` : '';
  if (!reason) return false;
  if (process.env.CI === 'true') throw new Error(`CI=true but CNI tests cannot run: ${reason}`);
  return `skipped: ${reason}`;
}

const ISTIO_STATUS = JSON.stringify({ initContainers: ['istio-validation'], containers: ['istio-proxy'], volumes: null, imagePullSecrets: null, revision: 'default' });
/** What Istio's CNI injection writes (shared/anchors/istio-inject/hello.yaml.cni.injected), plus exclusions. */
export const INJECTED = {
  'sidecar.istio.io/interceptionMode': 'REDIRECT',
  'sidecar.istio.io/status': ISTIO_STATUS,
  'traffic.sidecar.istio.io/excludeInboundPorts': '15020',
  'traffic.sidecar.istio.io/includeInboundPorts': '*',
  'traffic.sidecar.istio.io/includeOutboundIPRanges': '*',
  'traffic.sidecar.istio.io/excludeOutboundPorts': '5432',
  'traffic.sidecar.istio.io/excludeOutboundIPRanges': '198.19.0.0/16',
  'kubernetes.io/config.source': 'api',
};

let counter = 0;
/** nsenter to enter the pod netns; unshare and mount for the private mount namespace that keeps NSS out. */
export const NODE_TOOLS = ['nsenter', 'unshare', 'mount'] as const;

export interface Attachment {
  readonly containerId: string;
  readonly netns: string;
  readonly nsName: string;
  readonly pod: { namespace: string; name: string; uid: string };
  readonly annotations: Record<string, string> | undefined;
}

export class CniNode {
  readonly dir: string;
  readonly confDir: string;
  readonly binDir: string;
  /** Host tools without node: what a node without Node.js offers a plugin. */
  readonly hostPath: string;
  readonly ns: string;
  readonly subnet: number;

  /** nodeTools: what of util-linux the node offers besides /usr/sbin and /sbin (without unshare: no NSS sandbox). */
  constructor(label: string, nodeTools: readonly string[] = NODE_TOOLS) {
    const id = `${process.pid % 10000}-${++counter}`;
    this.ns = `mc-cni-${label}-${id}`.slice(0, 40);
    this.subnet = 20 + ((process.pid + counter * 7) % 200);
    this.dir = mkdtempSync(join(tmpdir(), 'meshcap-cni-node-'));
    liveDirs.add(this.dir);
    this.confDir = join(this.dir, 'net.d');
    this.binDir = join(this.dir, 'bin');
    const tools = join(this.dir, 'tools');
    for (const d of [this.confDir, this.binDir, tools, join(this.dir, 'ipam'), join(this.dir, 'state')]) mkdirSync(d, { recursive: true });
    for (const plugin of ['bridge', 'host-local', 'portmap', 'loopback']) symlinkSync(join(DEBIAN_CNI, plugin), join(this.binDir, plugin));
    // They live in /usr/bin beside node: give them their own dir so /usr/bin stays off PATH.
    for (const tool of nodeTools) symlinkSync(join('/usr/bin', tool), join(tools, tool));
    this.hostPath = `${tools}:/usr/sbin:/sbin`;
    const add = spawnSync('ip', ['netns', 'add', this.ns], { encoding: 'utf8' });
    if (add.status !== 0) throw new Error(`ip netns add ${this.ns}: ${add.stderr}`);
    liveNamespaces.add(this.ns);
    spawnSync('ip', ['-n', this.ns, 'link', 'set', 'lo', 'up']);
  }

  /** The primary CNI's config, as a cluster's network add-on would write it. */
  writePrimary(file = '10-meshcap-test.conflist', version = '1.0.0'): string {
    const conf = {
      cniVersion: version,
      name: 'meshcap-test',
      plugins: [
        {
          type: 'bridge', bridge: `mcbr${this.subnet}`, isGateway: true, ipMasq: false, hairpinMode: true,
          ipam: { type: 'host-local', dataDir: join(this.dir, 'ipam'), ranges: [[{ subnet: `198.18.${this.subnet}.0/24`, gateway: `198.18.${this.subnet}.1` }]], routes: [{ dst: '0.0.0.0/0' }] },
        },
        { type: 'portmap', capabilities: { portMappings: true }, snat: true },
      ],
    };
    const path = join(this.confDir, file);
    writeFileSync(path, `${JSON.stringify(conf, null, 2)}\n`);
    return path;
  }

  install(...extra: string[]): Run {
    ensurePlugin();
    return runCli(['cni', 'install', '--cni-conf-dir', this.confDir, '--cni-bin-dir', this.binDir, '--once', ...extra], { env: { MESHCAP_CNI_PLUGIN: SEA } });
  }

  uninstall(): Run {
    return runCli(['cni', 'uninstall', '--cni-conf-dir', this.confDir, '--cni-bin-dir', this.binDir]);
  }

  /** The first config in libcni order, as containerd (max_conf_num = 1) loads it. */
  effectiveConfig(): { path: string; conf: Record<string, any> } { // eslint-disable-line @typescript-eslint/no-explicit-any
    const names = spawnSync('ls', [this.confDir], { encoding: 'utf8' }).stdout.split('\n').filter((n) => /\.(conf|conflist|json)$/.test(n)).sort();
    const path = join(this.confDir, names[0]!);
    return { path, conf: JSON.parse(readFileSync(path, 'utf8')) };
  }

  /** A pod's network namespace, created as a runtime would (empty, lo down). */
  newPod(annotations: Record<string, string> | undefined, name = `pod-${++counter}`): Attachment {
    const nsName = `${this.ns}-p${++counter}`.slice(0, 50);
    const r = spawnSync('ip', ['netns', 'add', nsName], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ip netns add ${nsName}: ${r.stderr}`);
    liveNamespaces.add(nsName);
    return { containerId: `c${process.pid}x${counter}`, netns: `/run/netns/${nsName}`, nsName, pod: { namespace: 'default', name, uid: `uid-${counter}` }, annotations };
  }

  removePod(a: Attachment): void {
    spawnSync('ip', ['netns', 'del', a.nsName]);
    liveNamespaces.delete(a.nsName);
  }

  private env(command: string, a: Attachment, netns = a.netns): Record<string, string> {
    return {
      PATH: this.hostPath,
      CNI_COMMAND: command,
      CNI_CONTAINERID: a.containerId,
      CNI_NETNS: netns,
      CNI_IFNAME: 'eth0',
      CNI_PATH: this.binDir,
      // containerd's order changes between calls; this one puts IgnoreUnknown last, as observed.
      CNI_ARGS: `K8S_POD_NAMESPACE=${a.pod.namespace};K8S_POD_NAME=${a.pod.name};K8S_POD_INFRA_CONTAINER_ID=${a.containerId};K8S_POD_UID=${a.pod.uid};IgnoreUnknown=1`,
    };
  }

  /** Prepended to every plugin run (e.g. a wrapper that enters a test-owned mount namespace). */
  execPrefix: readonly string[] = [];

  /** One plugin, run in the node's netns with a clean environment (no node on PATH). */
  async exec(plugin: string, env: Record<string, string>, stdin: string): Promise<Run> {
    const argv = [...this.execPrefix, 'nsenter', `--net=/run/netns/${this.ns}`, '--', 'env', '-i', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), join(this.binDir, plugin)];
    return runAsync(argv[0]!, argv.slice(1), { input: stdin });
  }

  private stdinFor(conf: Record<string, any>, plugin: Record<string, any>, a: Attachment, prevResult?: unknown): string { // eslint-disable-line @typescript-eslint/no-explicit-any
    const runtimeConfig: Record<string, unknown> = {};
    const caps = (plugin.capabilities ?? {}) as Record<string, boolean>;
    if (caps['io.kubernetes.cri.pod-annotations'] && a.annotations) runtimeConfig['io.kubernetes.cri.pod-annotations'] = a.annotations;
    if (caps.portMappings) runtimeConfig.portMappings = [];
    const body: Record<string, unknown> = { ...plugin, cniVersion: conf.cniVersion, name: conf.name };
    if (Object.keys(runtimeConfig).length > 0) body.runtimeConfig = runtimeConfig;
    if (prevResult !== undefined) body.prevResult = prevResult;
    return JSON.stringify(body);
  }

  /** ADD through the effective conflist; the failing plugin's output when one fails. */
  async add(a: Attachment): Promise<{ ok: boolean; result: any; failed?: string; run: Run; logs: string }> { // eslint-disable-line @typescript-eslint/no-explicit-any
    const { conf } = this.effectiveConfig();
    let prev: unknown;
    let logs = '';
    // containerd (go-cni) brings lo up with the loopback plugin before the pod network, as here.
    let run: Run = await this.exec('loopback', { ...this.env('ADD', a), CNI_IFNAME: 'lo' }, JSON.stringify({ cniVersion: '1.0.0', name: 'cni-loopback', type: 'loopback' }));
    if (run.code !== 0) return { ok: false, result: safeJson(run.stdout), failed: 'loopback', run, logs: run.stderr };
    for (const plugin of conf.plugins) {
      run = await this.exec(plugin.type, this.env('ADD', a), this.stdinFor(conf, plugin, a, prev));
      logs += run.stderr;
      if (run.code !== 0) return { ok: false, result: safeJson(run.stdout), failed: plugin.type, run, logs };
      prev = JSON.parse(run.stdout);
    }
    return { ok: true, result: prev, run, logs };
  }

  /** CHECK through the list with the cached result, as libcni does. */
  async check(a: Attachment, prevResult: unknown): Promise<{ ok: boolean; failed?: string; run: Run }> {
    const { conf } = this.effectiveConfig();
    let run: Run = { code: 0, stdout: '', stderr: '' };
    for (const plugin of conf.plugins) {
      run = await this.exec(plugin.type, this.env('CHECK', a), this.stdinFor(conf, plugin, a, prevResult));
      if (run.code !== 0) return { ok: false, failed: plugin.type, run };
    }
    return { ok: true, run };
  }

  /** DEL in reverse order; containerd's later DELs have no netns and no prevResult. */
  async del(a: Attachment, options: { netns?: string; prevResult?: unknown } = {}): Promise<{ codes: Record<string, number>; runs: Record<string, Run> }> {
    const { conf } = this.effectiveConfig();
    const codes: Record<string, number> = {};
    const runs: Record<string, Run> = {};
    for (const plugin of [...conf.plugins].reverse()) {
      const run = await this.exec(plugin.type, this.env('DEL', a, options.netns ?? a.netns), this.stdinFor(conf, plugin, a, options.prevResult));
      codes[plugin.type] = run.code;
      runs[plugin.type] = run;
    }
    return { codes, runs };
  }

  /** A command inside the pod's netns. */
  inPod(a: Attachment, args: readonly string[], input?: string): Promise<Run> {
    return runAsync('nsenter', [`--net=${a.netns}`, '--', ...args], input === undefined ? {} : { input });
  }

  inNode(args: readonly string[]): Promise<Run> {
    return runAsync('nsenter', [`--net=/run/netns/${this.ns}`, '--', ...args]);
  }

  destroy(): void {
    for (const ns of [...liveNamespaces].filter((n) => n.startsWith(this.ns))) {
      spawnSync('ip', ['netns', 'del', ns]);
      liveNamespaces.delete(ns);
    }
    rmSync(this.dir, { recursive: true, force: true });
    liveDirs.delete(this.dir);
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export { serveIn, type ProbeServer as Served } from './probe-server.js';

/** One TCP connection from inside a netns as a given uid; the probe server's answer. */
export async function connectFrom(netns: string, host: string, port: number, uid = 65534): Promise<{ ok: boolean; reply?: string; error?: string }> {
  const { MESHCAP_BIN } = await import('./paths.js');
  const result = await runAsync('nsenter', [`--net=${netns}`, '--', process.execPath, MESHCAP_BIN, 'probe-connect', host, String(port), '--timeout', '3000', '--uid', String(uid), '--gid', String(uid)]);
  try {
    return JSON.parse(result.stdout) as { ok: boolean; reply?: string; error?: string };
  } catch {
    return { ok: false, error: `probe-connect exit ${result.code}: ${result.stderr}` };
  }
}
