/**
 * A small client for a container runtime's CRI (`runtime.v1.RuntimeService`) over its unix socket: what
 * the kubelet calls, nothing more. Used by the node audit (`meshcap audit --cri-socket`), the CNI agent
 * and the runtime test harness. Every failed call becomes a CriError naming the call, the socket, the
 * gRPC status and a fix.
 */
import * as grpc from '@grpc/grpc-js';
import { fromJSON } from '@grpc/proto-loader';
import { ExitCode, MeshcapError } from '../errors.js';
import { RUNTIME_V1_DESCRIPTOR, type RuntimeCall } from './api.js';
import type {
  Container,
  ContainerConfig,
  ContainerFilter,
  ContainerStatus,
  PodSandbox,
  PodSandboxConfig,
  PodSandboxFilter,
  PodSandboxStatusResponse,
  VersionResponse,
} from './types.js';

export class CriError extends MeshcapError {
  constructor(
    readonly call: RuntimeCall,
    readonly socket: string,
    /** gRPC status code (grpc.status), -1 when the call did not reach the runtime. */
    readonly code: number,
    readonly details: string,
  ) {
    const [why, fix] = explain(code, socket, details);
    super({
      exitCode: code === grpc.status.UNAVAILABLE ? ExitCode.Unsupported : ExitCode.Unexpected,
      what: `CRI ${call} on ${socket} failed`,
      why,
      fix,
      output: details,
    });
    this.name = 'CriError';
  }
}

function explain(code: number, socket: string, details: string): [string, string] {
  switch (code) {
    case grpc.status.UNAVAILABLE:
      return [`the runtime does not answer on ${socket}`, 'check that containerd (or CRI-O) runs and that the socket path is right (containerd: /run/containerd/containerd.sock)'];
    case grpc.status.UNIMPLEMENTED:
      return ['the runtime does not serve runtime.v1 (a runtime older than Kubernetes 1.23 support, or its CRI plugin is disabled)', 'enable the CRI plugin or upgrade the runtime'];
    case grpc.status.NOT_FOUND:
      return ['the runtime does not know that sandbox or container', 'it may have been removed meanwhile; list again'];
    case grpc.status.DEADLINE_EXCEEDED:
      return ['the runtime did not answer in time', 'retry; a busy node may need a longer timeout'];
    default:
      return [`the runtime answered: ${details || grpc.status[code] || 'no details'}`, 'see the runtime log (journalctl -u containerd) for the same request'];
  }
}

type Callback = (error: grpc.ServiceError | null, response: unknown) => void;
type Stub = grpc.Client & Record<RuntimeCall, (request: unknown, options: grpc.CallOptions, callback: Callback) => void>;

let serviceConstructor: grpc.ServiceClientConstructor | undefined;
function runtimeService(): grpc.ServiceClientConstructor {
  if (!serviceConstructor) {
    const definition = fromJSON(RUNTIME_V1_DESCRIPTOR as Parameters<typeof fromJSON>[0], { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
    const loaded = grpc.loadPackageDefinition(definition) as unknown as { runtime: { v1: { RuntimeService: grpc.ServiceClientConstructor } } };
    serviceConstructor = loaded.runtime.v1.RuntimeService;
  }
  return serviceConstructor;
}

export interface CriClientOptions {
  /** Deadline for each call, in milliseconds (the kubelet's default runtime request timeout is 2 minutes). */
  timeoutMs?: number;
}

export class CriClient {
  private readonly stub: Stub;
  private readonly timeoutMs: number;

  /** `socket`: a path (`/run/containerd/containerd.sock`) or a `unix://` address. */
  constructor(
    readonly socket: string,
    options: CriClientOptions = {},
  ) {
    const address = socket.startsWith('unix:') ? socket : `unix://${socket}`;
    const Service = runtimeService();
    this.stub = new Service(address, grpc.credentials.createInsecure(), {
      // Large sandbox status answers (verbose info carries the whole OCI spec).
      'grpc.max_receive_message_length': 16 * 1024 * 1024,
    }) as unknown as Stub;
    this.timeoutMs = options.timeoutMs ?? 60_000;
  }

  close(): void {
    this.stub.close();
  }

  private call<T>(name: RuntimeCall, request: object): Promise<T> {
    return new Promise((resolve, reject) => {
      this.stub[name](request, { deadline: Date.now() + this.timeoutMs }, (error, response) => {
        if (error) reject(new CriError(name, this.socket, error.code ?? -1, error.details ?? error.message));
        else resolve(response as T);
      });
    });
  }

  version(): Promise<VersionResponse> {
    return this.call('Version', { version: 'v1' });
  }

  /** Creates and starts a sandbox (the pause container and the pod's network: CNI ADD runs here). */
  async runPodSandbox(config: PodSandboxConfig, runtimeHandler = ''): Promise<string> {
    const answer = await this.call<{ pod_sandbox_id: string }>('RunPodSandbox', { config, runtime_handler: runtimeHandler });
    return answer.pod_sandbox_id;
  }

  /** Stops the sandbox's containers and tears its network down (CNI DEL). Repeatable. */
  async stopPodSandbox(id: string): Promise<void> {
    await this.call('StopPodSandbox', { pod_sandbox_id: id });
  }

  /** Removes a stopped sandbox and its containers (another CNI DEL). */
  async removePodSandbox(id: string): Promise<void> {
    await this.call('RemovePodSandbox', { pod_sandbox_id: id });
  }

  podSandboxStatus(id: string, verbose = false): Promise<PodSandboxStatusResponse> {
    return this.call('PodSandboxStatus', { pod_sandbox_id: id, verbose });
  }

  async listPodSandbox(filter: PodSandboxFilter = {}): Promise<PodSandbox[]> {
    const answer = await this.call<{ items: PodSandbox[] }>('ListPodSandbox', { filter });
    return answer.items;
  }

  /** `sandboxConfig` must be the config the sandbox was created with, as the kubelet sends it. */
  async createContainer(podSandboxId: string, config: ContainerConfig, sandboxConfig: PodSandboxConfig): Promise<string> {
    const answer = await this.call<{ container_id: string }>('CreateContainer', { pod_sandbox_id: podSandboxId, config, sandbox_config: sandboxConfig });
    return answer.container_id;
  }

  async startContainer(id: string): Promise<void> {
    await this.call('StartContainer', { container_id: id });
  }

  /** Stops a running container: SIGTERM, then SIGKILL after `timeoutSeconds`. */
  async stopContainer(id: string, timeoutSeconds = 0): Promise<void> {
    await this.call('StopContainer', { container_id: id, timeout: timeoutSeconds });
  }

  /** Removes a container record (what container GC does to an exited init container). */
  async removeContainer(id: string): Promise<void> {
    await this.call('RemoveContainer', { container_id: id });
  }

  async containerStatus(id: string): Promise<ContainerStatus> {
    const answer = await this.call<{ status: ContainerStatus }>('ContainerStatus', { container_id: id });
    return answer.status;
  }

  async listContainers(filter: ContainerFilter = {}): Promise<Container[]> {
    const answer = await this.call<{ containers: Container[] }>('ListContainers', { filter });
    return answer.containers;
  }

  /**
   * The sandbox's network namespace path, from the verbose status (containerd: `info.info` is JSON whose
   * `runtimeSpec.linux.namespaces` lists it). Undefined for a host-network sandbox or an unknown runtime.
   */
  async sandboxNetnsPath(id: string): Promise<string | undefined> {
    return netnsPathFromInfo((await this.podSandboxStatus(id, true)).info);
  }

  /** Polls until the container has exited or `timeoutMs` has passed (then throws). */
  async waitForExit(id: string, timeoutMs = 60_000, intervalMs = 20): Promise<ContainerStatus> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const status = await this.containerStatus(id);
      if (status.state === 'CONTAINER_EXITED') return status;
      if (Date.now() > deadline) throw new Error(`container ${id} did not exit within ${timeoutMs} ms (state ${status.state})`);
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  }
}

/** Pure: the netns path in a verbose PodSandboxStatus `info` map (containerd's layout; CRI-O's is alike). */
export function netnsPathFromInfo(info: Record<string, string>): string | undefined {
  const text = info.info;
  if (!text) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  const namespaces = (parsed as { runtimeSpec?: { linux?: { namespaces?: { type?: string; path?: string }[] } } }).runtimeSpec?.linux?.namespaces;
  const network = namespaces?.find((ns) => ns.type === 'network');
  return network?.path || undefined;
}
