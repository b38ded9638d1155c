/**
 * A Kubernetes node without a kubelet: a private containerd driven through its CRI the way the kubelet
 * drives it. Everything it makes is private and removed by `stop()`, pass or fail (and, as a last resort,
 * on process exit): containers, sandboxes, the containerd process and its shims (by PID), mounts under its
 * temporary directory, cgroups, the node network namespace, CNI result files and the temporary directory.
 *
 * How to use it:
 *
 *   const node = await RuntimeNode.start({ label: 'cni' });          // netns + containerd + pause image
 *   //   snapshotter: overlayfs (default where the kernel has it) or native (MESHCAP_TEST_SNAPSHOTTER),
 *   //   options: cniConfDir (your conflist dir; default: a bridge + host-local one made here),
 *   //   cniPlugins {type: path} (linked into the private CNI bin dir next to /usr/lib/cni/*),
 *   //   env (containerd's environment, which CNI plugins inherit)
 *   after(() => node.stop());
 *   await node.importImage(archive);                                  // docker/OCI archive (ctr import)
 *   const pod = await node.runSandbox({ name: 'web', namespace: 'demo', annotations: { ... } });
 *   pod.id; pod.netnsPath; pod.ip;                                    // from PodSandboxStatus (verbose)
 *   const run = await pod.run(pod.container({ name: 'c', image, command: ['/bin/sh'], args: ['-c', 'true'] }));
 *   run.exitCode; run.log;                                            // CRI log lines, text only
 *   const k8s = kubeletContainer(podSpecContainer, pod, { attempt });   // from kubelet.ts: a Pod container -> CRI
 *   await pod.remove();                                              // StopPodSandbox + RemovePodSandbox (CNI DELs)
 *   await node.stop();                                               // everything, idempotent
 *
 *   node.cri is the raw CriClient (src/cri/client.ts); node.inNode(cmd, args) runs a command in the node netns;
 *   inNetns(pod.netnsPath, cmd, args) reads a pod's rules (`iptables-nft-save`).
 *
 * Safety: containerd, the bridge, veths and any NAT rules live in the node namespace made here (never the
 * machine's); pod addresses come from 198.18.0.0/15 and 2001:db8::/32.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CriClient } from '../../src/cri/client.js';
import type { ContainerConfig, ContainerStatus, PodSandboxConfig } from '../../src/cri/types.js';
import { pauseImageArchive, PAUSE_IMAGE } from './images.js';

export const CNI_SYSTEM_BIN = '/usr/lib/cni';
const live = new Set<RuntimeNode>();
let counter = 0;

process.on('exit', () => {
  for (const node of live) node.forceCleanup();
});

export interface RuntimeNodeOptions {
  /** Short name used in the netns, bridge and directory names. */
  label: string;
  /** A directory holding the CNI conflist(s); default: one written here (bridge + host-local, 198.18.<subnet>.0/24). */
  cniConfDir?: string;
  /** Extra CNI plugins: type name -> executable, linked into the private bin dir. */
  cniPlugins?: Record<string, string>;
  /** Extra environment for containerd (CNI plugins inherit it). */
  env?: Record<string, string>;
  /** IPv4 subnet index for the default conflist: pods get 198.18.<subnet>.0/24 (default: derived from a counter). */
  subnet?: number;
  /** Add 2001:db8:<subnet>::/64 to the default conflist. */
  ipv6?: boolean;
  /**
   * overlayfs (the default where the kernel has it, as on real nodes) or native. native copies the whole
   * image (~220 MB for meshcap's) for every container: 20 pods at once then spend minutes copying.
   */
  snapshotter?: 'overlayfs' | 'native';
}

function defaultSnapshotter(): 'overlayfs' | 'native' {
  const wanted = process.env.MESHCAP_TEST_SNAPSHOTTER;
  if (wanted === 'native' || wanted === 'overlayfs') return wanted;
  return /\soverlay$/m.test(readFileSync('/proc/filesystems', 'utf8')) ? 'overlayfs' : 'native';
}

export interface SandboxSpec {
  name: string;
  namespace?: string;
  uid?: string;
  attempt?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  hostname?: string;
}

export interface ContainerRun {
  readonly id: string;
  readonly status: ContainerStatus;
  readonly exitCode: number;
  /** The container's output: the text of its CRI log lines, stdout and stderr interleaved. */
  readonly log: string;
}

export interface ExecResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export function exec(file: string, args: readonly string[], input?: string): ExecResult {
  const result = spawnSync(file, args, { encoding: 'utf8', input: input ?? '', timeout: 120_000 });
  return { code: result.status ?? -1, stdout: result.stdout ?? '', stderr: (result.stderr ?? '') + (result.error ? String(result.error) : '') };
}

function must(file: string, args: readonly string[]): string {
  const result = exec(file, args);
  if (result.code !== 0) throw new Error(`${file} ${args.join(' ')} failed (${result.code}): ${result.stderr.trim()}`);
  return result.stdout;
}

/** Runs a command inside a network namespace given by path (a pod's, from PodSandboxStatus). */
export function inNetns(netnsPath: string, file: string, args: readonly string[], input?: string): ExecResult {
  return exec('nsenter', [`--net=${netnsPath}`, '--', file, ...args], input);
}

/** Why the runtime tier cannot run here, or undefined when it can. */
export function runtimeUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root';
  for (const tool of ['containerd', 'ctr', 'runc', 'nsenter', 'ip']) {
    if (exec('sh', ['-c', `command -v ${tool}`]).code !== 0) return `${tool} is not installed (bash scripts/setup.sh --runtime installs it)`;
  }
  if (!existsSync(join(CNI_SYSTEM_BIN, 'bridge'))) return 'containernetworking-plugins is not installed';
  return undefined;
}

/** Skip reason for node:test, or a thrown error with CI=true (the tier must run in CI). */
export function runtimeSkip(): string | false {
  const reason = runtimeUnavailable();
  if (!reason) return false;
  if (process.env.CI === 'true') throw new Error(`CI=true but the runtime tier cannot run: ${reason}`);
  return `skipped: ${reason}`;
}

export class RuntimeNode {
  readonly cri: CriClient;
  private pid = 0;
  private stopped = false;
  snapshotter: 'overlayfs' | 'native' = 'native';
  /** Every sandbox made here: their CNI result files (containerd's loopback network too) go in cleanup. */
  private readonly sandboxIds = new Set<string>();

  private constructor(
    readonly label: string,
    readonly dir: string,
    readonly netns: string,
    readonly cgroupParent: string,
    readonly networkName: string,
  ) {
    this.cri = new CriClient(join(dir, 'containerd.sock'), { timeoutMs: 120_000 });
  }

  get socket(): string {
    return join(this.dir, 'containerd.sock');
  }
  get netnsPath(): string {
    return `/run/netns/${this.netns}`;
  }
  get containerdPid(): number {
    return this.pid;
  }

  static async start(options: RuntimeNodeOptions): Promise<RuntimeNode> {
    const n = ++counter;
    const tag = `${options.label}-${process.pid % 100000}-${n}`.slice(0, 24);
    const dir = mkdtempSync(join(tmpdir(), `meshcap-rt-${options.label}-`));
    const node = new RuntimeNode(options.label, dir, `mcrt-${tag}`, `/meshcap-rt-${tag}`, `mcrt-${tag}`);
    live.add(node);
    try {
      await node.boot(options, n);
    } catch (error) {
      await node.stop();
      throw error;
    }
    return node;
  }

  private async boot(options: RuntimeNodeOptions, n: number): Promise<void> {
    this.snapshotter = options.snapshotter ?? defaultSnapshotter();
    must('ip', ['netns', 'add', this.netns]);
    must('ip', ['-n', this.netns, 'link', 'set', 'lo', 'up']);

    const binDir = join(this.dir, 'cni-bin');
    mkdirSync(binDir);
    for (const name of readdirSync(CNI_SYSTEM_BIN)) symlinkSync(join(CNI_SYSTEM_BIN, name), join(binDir, name));
    for (const [type, path] of Object.entries(options.cniPlugins ?? {})) {
      rmSync(join(binDir, type), { force: true });
      symlinkSync(path, join(binDir, type));
    }
    let confDir = options.cniConfDir;
    if (!confDir) {
      confDir = join(this.dir, 'cni-conf');
      mkdirSync(confDir);
      writeFileSync(join(confDir, '10-meshcap-test.conflist'), JSON.stringify(this.defaultConflist(options.subnet ?? 100 + (n % 100), options.ipv6 ?? false), null, 2));
    }
    writeFileSync(join(this.dir, 'config.toml'), containerdConfig(this.dir, binDir, confDir, this.snapshotter));

    const log = join(this.dir, 'containerd.log');
    const child = spawn('nsenter', [`--net=${this.netnsPath}`, '--', 'containerd', '--config', join(this.dir, 'config.toml'), '--log-level', 'warn'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...options.env },
      detached: false,
    });
    // nsenter execs containerd, so this PID is containerd's.
    this.pid = child.pid ?? 0;
    const chunks: Buffer[] = [];
    child.stderr.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      writeFileSync(log, Buffer.concat(chunks));
    });
    let exited: string | undefined;
    child.on('exit', (code, signal) => (exited = `containerd exited (${code ?? signal}) while starting`));
    child.unref();
    (child.stderr as unknown as { unref?: () => void }).unref?.();

    const deadline = Date.now() + 30_000;
    for (;;) {
      if (exited) throw new Error(`${exited}: ${Buffer.concat(chunks).toString().slice(-2000)}`);
      if (existsSync(this.socket)) {
        try {
          await this.cri.version();
          break;
        } catch {
          // not serving yet
        }
      }
      if (Date.now() > deadline) throw new Error(`containerd did not serve its CRI within 30 s: ${Buffer.concat(chunks).toString().slice(-2000)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await this.importImage(pauseImageArchive());
  }

  private defaultConflist(subnet: number, ipv6: boolean) {
    const ranges: object[][] = [[{ subnet: `198.18.${subnet}.0/24`, gateway: `198.18.${subnet}.1` }]];
    const routes: object[] = [{ dst: '0.0.0.0/0' }];
    if (ipv6) {
      ranges.push([{ subnet: `2001:db8:${subnet}::/64`, gateway: `2001:db8:${subnet}::1` }]);
      routes.push({ dst: '::/0' });
    }
    return {
      cniVersion: '1.0.0',
      name: this.networkName,
      plugins: [
        {
          type: 'bridge',
          bridge: `mcbr${counter}`.slice(0, 15),
          isGateway: true,
          ipMasq: false,
          hairpinMode: true,
          ipam: { type: 'host-local', ranges, routes, dataDir: join(this.dir, 'ipam') },
        },
      ],
    };
  }

  /** Imports a docker-archive or OCI archive into the CRI's image store (namespace k8s.io), unpacked for the node's snapshotter. */
  async importImage(archive: string): Promise<void> {
    must('ctr', ['--address', this.socket, '-n', 'k8s.io', 'images', 'import', '--snapshotter', this.snapshotter, '--no-unpack=false', archive]);
  }

  /** Runs a command in the node's network namespace (where containerd, the bridge and CNI plugins run). */
  inNode(file: string, args: readonly string[], input?: string): ExecResult {
    return inNetns(this.netnsPath, file, args, input);
  }

  /** RunPodSandbox with a kubelet-like config; returns the sandbox with its netns path and IP. */
  async runSandbox(spec: SandboxSpec): Promise<Sandbox> {
    const namespace = spec.namespace ?? 'default';
    const uid = spec.uid ?? `${this.networkName}-${spec.name}-${++counter}`;
    const logDir = join(this.dir, 'pods', `${namespace}_${spec.name}_${uid}`);
    mkdirSync(logDir, { recursive: true });
    const config: PodSandboxConfig = {
      metadata: { name: spec.name, namespace, uid, attempt: spec.attempt ?? 0 },
      hostname: spec.hostname ?? spec.name,
      log_directory: logDir,
      dns_config: { servers: ['198.18.0.10'], searches: [`${namespace}.svc.cluster.local`, 'svc.cluster.local', 'cluster.local'], options: ['ndots:5'] },
      labels: { 'io.kubernetes.pod.name': spec.name, 'io.kubernetes.pod.namespace': namespace, 'io.kubernetes.pod.uid': uid, ...spec.labels },
      annotations: { 'kubernetes.io/config.source': 'api', 'kubernetes.io/config.seen': new Date().toISOString(), ...spec.annotations },
      linux: {
        cgroup_parent: this.cgroupParent,
        security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' }, seccomp: { profile_type: 'RuntimeDefault' } },
      },
    };
    const id = await this.cri.runPodSandbox(config);
    this.sandboxIds.add(id);
    const status = await this.cri.podSandboxStatus(id, true);
    const netnsPath = await this.cri.sandboxNetnsPath(id);
    if (!netnsPath) throw new Error(`sandbox ${id} has no network namespace path in its verbose status`);
    return new Sandbox(this, id, config, netnsPath, status.status?.network?.ip ?? '');
  }

  /**
   * Tears everything down; safe to call twice and after a failed start. First the polite way (the CRI
   * stops and removes every sandbox), then by force what is left.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.pid && processAlive(this.pid)) {
      try {
        const sandboxes = await this.cri.listPodSandbox();
        for (const sandbox of sandboxes) {
          await this.cri.stopPodSandbox(sandbox.id).catch(() => {});
          await this.cri.removePodSandbox(sandbox.id).catch(() => {});
        }
      } catch {
        // containerd is not answering: the forced cleanup below handles it
      }
    }
    this.cri.close();
    this.forceCleanup();
  }

  /** Synchronous cleanup by PID and path only (also run on process exit). */
  forceCleanup(): void {
    live.delete(this);
    // Container processes: every PID in this node's cgroups is one of ours.
    for (const pid of this.cgroupPids()) kill(pid, 'SIGKILL');
    // Shims: started by this containerd, found by this node's unique socket in their command line.
    for (const pid of this.shimPids()) kill(pid, 'SIGKILL');
    if (this.pid) {
      kill(this.pid, 'SIGTERM');
      if (!waitGone(this.pid, 5000)) {
        kill(this.pid, 'SIGKILL');
        waitGone(this.pid, 5000);
      }
    }
    for (const pid of this.shimPids()) kill(pid, 'SIGKILL');
    for (const mount of mountsUnder(this.dir).reverse()) spawnSync('umount', ['-l', mount]);
    this.removeCgroups();
    spawnSync('ip', ['netns', 'del', this.netns]);
    for (const dir of ['/var/lib/cni/results', '/var/lib/cni/cache/results']) {
      if (!existsSync(dir)) continue;
      for (const name of readdirSync(dir)) {
        const ours = name.startsWith(`${this.networkName}-`) || [...this.sandboxIds].some((id) => name.includes(`-${id}-`));
        if (ours) rmSync(join(dir, name), { force: true });
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** PIDs of a running container's processes (from its cgroup under this node's cgroup parent). */
  containerPids(containerId: string): number[] {
    const pids = new Set<number>();
    for (const dir of this.cgroupDirs()) {
      try {
        for (const line of readFileSync(join(dir, containerId, 'cgroup.procs'), 'utf8').split('\n')) if (line.trim()) pids.add(Number(line));
      } catch {
        // not in this hierarchy
      }
    }
    return [...pids];
  }

  private cgroupDirs(): string[] {
    const dirs: string[] = [];
    if (!existsSync('/sys/fs/cgroup')) return dirs;
    const roots = ['/sys/fs/cgroup', ...readdirSync('/sys/fs/cgroup').map((c) => join('/sys/fs/cgroup', c))];
    for (const root of roots) {
      const dir = join(root, this.cgroupParent);
      if (existsSync(dir)) dirs.push(dir);
    }
    return dirs;
  }

  private cgroupPids(): number[] {
    const pids = new Set<number>();
    const walk = (dir: string) => {
      try {
        for (const line of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n')) if (line.trim()) pids.add(Number(line));
        for (const entry of readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) walk(join(dir, entry.name));
      } catch {
        // gone meanwhile
      }
    };
    for (const dir of this.cgroupDirs()) walk(dir);
    return [...pids];
  }

  private removeCgroups(): void {
    const remove = (dir: string) => {
      try {
        for (const entry of readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) remove(join(dir, entry.name));
        spawnSync('rmdir', [dir]);
      } catch {
        // gone meanwhile
      }
    };
    for (const dir of this.cgroupDirs()) remove(dir);
  }

  private shimPids(): number[] {
    const pids: number[] = [];
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
        if (cmdline[0]?.endsWith('containerd-shim-runc-v2') && cmdline.includes(this.socket)) pids.push(Number(entry));
      } catch {
        // gone meanwhile
      }
    }
    return pids;
  }
}

export class Sandbox {
  constructor(
    readonly node: RuntimeNode,
    readonly id: string,
    readonly config: PodSandboxConfig,
    readonly netnsPath: string,
    readonly ip: string,
  ) {}

  /** A CRI ContainerConfig with the kubelet's labels, annotations and log path filled in. */
  container(spec: {
    name: string;
    image: string;
    command?: string[];
    args?: string[];
    env?: Record<string, string>;
    attempt?: number;
    mounts?: ContainerConfig['mounts'];
    securityContext?: NonNullable<ContainerConfig['linux']>['security_context'];
  }): ContainerConfig {
    const attempt = spec.attempt ?? 0;
    const meta = this.config.metadata;
    return {
      metadata: { name: spec.name, attempt },
      image: { image: spec.image },
      command: spec.command ?? [],
      args: spec.args ?? [],
      envs: Object.entries(spec.env ?? {}).map(([key, value]) => ({ key, value })),
      mounts: spec.mounts ?? [],
      labels: {
        'io.kubernetes.container.name': spec.name,
        'io.kubernetes.pod.name': meta.name,
        'io.kubernetes.pod.namespace': meta.namespace,
        'io.kubernetes.pod.uid': meta.uid,
      },
      annotations: { 'io.kubernetes.container.restartCount': String(attempt), 'io.kubernetes.container.terminationMessagePolicy': 'File' },
      log_path: `${spec.name}/${attempt}.log`,
      linux: { security_context: spec.securityContext ?? {} },
    };
  }

  /** CreateContainer + StartContainer; returns the container id (for long-running containers). */
  async start(config: ContainerConfig): Promise<string> {
    mkdirSync(join(this.config.log_directory!, config.metadata.name), { recursive: true });
    const id = await this.node.cri.createContainer(this.id, config, this.config);
    await this.node.cri.startContainer(id);
    return id;
  }

  /** Creates, starts and waits for a container to exit, as the kubelet runs an init container. */
  async run(config: ContainerConfig, timeoutMs = 60_000): Promise<ContainerRun> {
    const id = await this.start(config);
    const status = await this.node.cri.waitForExit(id, timeoutMs);
    return { id, status, exitCode: status.exit_code, log: this.log(config) };
  }

  /** The text of a container's CRI log (`<time> <stream> <P|F> <text>` lines). */
  log(config: ContainerConfig): string {
    const path = join(this.config.log_directory!, config.log_path!);
    if (!existsSync(path)) return '';
    return criLogText(readFileSync(path, 'utf8'));
  }

  /** Runs a command in this pod's network namespace from the host (reading rules, connecting). */
  exec(file: string, args: readonly string[], input?: string): ExecResult {
    return inNetns(this.netnsPath, file, args, input);
  }

  /** StopPodSandbox then RemovePodSandbox, as the kubelet does when a pod is deleted. */
  async remove(): Promise<void> {
    await this.node.cri.stopPodSandbox(this.id);
    await this.node.cri.removePodSandbox(this.id);
  }
}

/** Pure: the text of CRI-format log lines; partial (`P`) lines are joined with the next one. */
export function criLogText(log: string): string {
  let out = '';
  for (const line of log.split('\n')) {
    const match = /^\S+ (stdout|stderr) ([PF]) (.*)$/.exec(line);
    if (!match) continue;
    out += match[3] + (match[2] === 'F' ? '\n' : '');
  }
  return out;
}

function containerdConfig(dir: string, binDir: string, confDir: string, snapshotter: string): string {
  const q = JSON.stringify;
  return `version = 2
root = ${q(join(dir, 'root'))}
state = ${q(join(dir, 'state'))}
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.internal.v1.opt", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = ${q(join(dir, 'containerd.sock'))}

[ttrpc]
  address = ${q(join(dir, 'containerd.sock.ttrpc'))}

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = ${q(PAUSE_IMAGE)}
  disable_apparmor = true
  # Root here lacks CAP_SYS_RESOURCE: runc could not lower oom_score_adj.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = ${q(snapshotter)}
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "/usr/sbin/runc"
        Root = ${q(join(dir, 'runc'))}
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = ${q(binDir)}
    conf_dir = ${q(confDir)}
    max_conf_num = 1
`;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function kill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** Waits (blocking: this also runs in the exit hook) until a child is gone, reaping it if it is ours. */
function waitGone(pid: number, timeoutMs: number): boolean {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!processAlive(pid)) return true;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return true; // a zombie: exited
    } catch {
      return true;
    }
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  }
  return !processAlive(pid);
}

function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .filter((point) => point === dir || point.startsWith(`${dir}/`));
}
