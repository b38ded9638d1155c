/**
 * The subset of the CRI's `runtime.v1` API (k8s.io/cri-api, pkg/apis/runtime/v1/api.proto) that meshcap
 * uses, written as a protobufjs JSON descriptor with the proto's own names and field numbers. Fields left
 * out are simply not sent, and unknown fields in answers are skipped, so a newer runtime still talks to it.
 * Pure data: the client (client.ts) loads it with @grpc/proto-loader.
 */

type Field = { type: string; id: number; rule?: 'repeated'; keyType?: string };
type Fields = Record<string, Field>;

const s = (id: number): Field => ({ type: 'string', id });
const b = (id: number): Field => ({ type: 'bool', id });
const i64 = (id: number): Field => ({ type: 'int64', id });
const of = (type: string, id: number): Field => ({ type, id });
const list = (type: string, id: number): Field => ({ type, id, rule: 'repeated' });
const map = (id: number): Field => ({ type: 'string', keyType: 'string', id });
const msg = (fields: Fields) => ({ fields });

const messages = {
  VersionRequest: msg({ version: s(1) }),
  VersionResponse: msg({ version: s(1), runtime_name: s(2), runtime_version: s(3), runtime_api_version: s(4) }),

  PodSandboxMetadata: msg({ name: s(1), uid: s(2), namespace: s(3), attempt: of('uint32', 4) }),
  DNSConfig: msg({ servers: list('string', 1), searches: list('string', 2), options: list('string', 3) }),
  PortMapping: msg({ protocol: of('Protocol', 1), container_port: of('int32', 2), host_port: of('int32', 3), host_ip: s(4) }),
  Int64Value: msg({ value: i64(1) }),
  NamespaceOption: msg({ network: of('NamespaceMode', 1), pid: of('NamespaceMode', 2), ipc: of('NamespaceMode', 3), target_id: s(4) }),
  SecurityProfile: msg({ profile_type: of('ProfileType', 1), localhost_ref: s(2) }),
  LinuxSandboxSecurityContext: msg({
    namespace_options: of('NamespaceOption', 1),
    run_as_user: of('Int64Value', 3),
    readonly_rootfs: b(4),
    supplemental_groups: list('int64', 5),
    privileged: b(6),
    run_as_group: of('Int64Value', 8),
    seccomp: of('SecurityProfile', 9),
  }),
  LinuxPodSandboxConfig: msg({ cgroup_parent: s(1), security_context: of('LinuxSandboxSecurityContext', 2), sysctls: map(3) }),
  PodSandboxConfig: msg({
    metadata: of('PodSandboxMetadata', 1),
    hostname: s(2),
    log_directory: s(3),
    dns_config: of('DNSConfig', 4),
    port_mappings: list('PortMapping', 5),
    labels: map(6),
    annotations: map(7),
    linux: of('LinuxPodSandboxConfig', 8),
  }),

  RunPodSandboxRequest: msg({ config: of('PodSandboxConfig', 1), runtime_handler: s(2) }),
  RunPodSandboxResponse: msg({ pod_sandbox_id: s(1) }),
  StopPodSandboxRequest: msg({ pod_sandbox_id: s(1) }),
  StopPodSandboxResponse: msg({}),
  RemovePodSandboxRequest: msg({ pod_sandbox_id: s(1) }),
  RemovePodSandboxResponse: msg({}),
  PodSandboxStatusRequest: msg({ pod_sandbox_id: s(1), verbose: b(2) }),
  PodIP: msg({ ip: s(1) }),
  PodSandboxNetworkStatus: msg({ ip: s(1), additional_ips: list('PodIP', 2) }),
  Namespace: msg({ options: of('NamespaceOption', 2) }),
  LinuxPodSandboxStatus: msg({ namespaces: of('Namespace', 1) }),
  PodSandboxStatus: msg({
    id: s(1),
    metadata: of('PodSandboxMetadata', 2),
    state: of('PodSandboxState', 3),
    created_at: i64(4),
    network: of('PodSandboxNetworkStatus', 5),
    linux: of('LinuxPodSandboxStatus', 6),
    labels: map(7),
    annotations: map(8),
    runtime_handler: s(9),
  }),
  PodSandboxStatusResponse: msg({ status: of('PodSandboxStatus', 1), info: map(2) }),
  PodSandboxStateValue: msg({ state: of('PodSandboxState', 1) }),
  PodSandboxFilter: msg({ id: s(1), state: of('PodSandboxStateValue', 2), label_selector: map(3) }),
  ListPodSandboxRequest: msg({ filter: of('PodSandboxFilter', 1) }),
  PodSandbox: msg({
    id: s(1),
    metadata: of('PodSandboxMetadata', 2),
    state: of('PodSandboxState', 3),
    created_at: i64(4),
    labels: map(5),
    annotations: map(6),
    runtime_handler: s(7),
  }),
  ListPodSandboxResponse: msg({ items: list('PodSandbox', 1) }),

  ContainerMetadata: msg({ name: s(1), attempt: of('uint32', 2) }),
  ImageSpec: msg({ image: s(1), annotations: map(2) }),
  // `value` is `bytes` in newer protos and `string` in older ones: the same wire format.
  KeyValue: msg({ key: s(1), value: s(2) }),
  Mount: msg({ container_path: s(1), host_path: s(2), readonly: b(3), selinux_relabel: b(4), propagation: of('MountPropagation', 5) }),
  Capability: msg({ add_capabilities: list('string', 1), drop_capabilities: list('string', 2), add_ambient_capabilities: list('string', 3) }),
  LinuxContainerSecurityContext: msg({
    capabilities: of('Capability', 1),
    privileged: b(2),
    namespace_options: of('NamespaceOption', 3),
    run_as_user: of('Int64Value', 5),
    run_as_username: s(6),
    readonly_rootfs: b(7),
    supplemental_groups: list('int64', 8),
    no_new_privs: b(11),
    run_as_group: of('Int64Value', 12),
    masked_paths: list('string', 13),
    readonly_paths: list('string', 14),
    seccomp: of('SecurityProfile', 15),
  }),
  LinuxContainerConfig: msg({ security_context: of('LinuxContainerSecurityContext', 2) }),
  ContainerConfig: msg({
    metadata: of('ContainerMetadata', 1),
    image: of('ImageSpec', 2),
    command: list('string', 3),
    args: list('string', 4),
    working_dir: s(5),
    envs: list('KeyValue', 6),
    mounts: list('Mount', 7),
    labels: map(9),
    annotations: map(10),
    log_path: s(11),
    stdin: b(12),
    stdin_once: b(13),
    tty: b(14),
    linux: of('LinuxContainerConfig', 15),
  }),
  CreateContainerRequest: msg({ pod_sandbox_id: s(1), config: of('ContainerConfig', 2), sandbox_config: of('PodSandboxConfig', 3) }),
  CreateContainerResponse: msg({ container_id: s(1) }),
  StartContainerRequest: msg({ container_id: s(1) }),
  StartContainerResponse: msg({}),
  StopContainerRequest: msg({ container_id: s(1), timeout: i64(2) }),
  StopContainerResponse: msg({}),
  RemoveContainerRequest: msg({ container_id: s(1) }),
  RemoveContainerResponse: msg({}),
  ContainerStatusRequest: msg({ container_id: s(1), verbose: b(2) }),
  ContainerStatus: msg({
    id: s(1),
    metadata: of('ContainerMetadata', 2),
    state: of('ContainerState', 3),
    created_at: i64(4),
    started_at: i64(5),
    finished_at: i64(6),
    exit_code: of('int32', 7),
    image: of('ImageSpec', 8),
    image_ref: s(9),
    reason: s(10),
    message: s(11),
    labels: map(12),
    annotations: map(13),
    log_path: s(15),
  }),
  ContainerStatusResponse: msg({ status: of('ContainerStatus', 1), info: map(2) }),
  ContainerStateValue: msg({ state: of('ContainerState', 1) }),
  ContainerFilter: msg({ id: s(1), state: of('ContainerStateValue', 2), pod_sandbox_id: s(3), label_selector: map(4) }),
  ListContainersRequest: msg({ filter: of('ContainerFilter', 1) }),
  Container: msg({
    id: s(1),
    pod_sandbox_id: s(2),
    metadata: of('ContainerMetadata', 3),
    image: of('ImageSpec', 4),
    image_ref: s(5),
    state: of('ContainerState', 6),
    created_at: i64(7),
    labels: map(8),
    annotations: map(9),
  }),
  ListContainersResponse: msg({ containers: list('Container', 1) }),
};

const enums = {
  Protocol: { values: { TCP: 0, UDP: 1, SCTP: 2 } },
  MountPropagation: { values: { PROPAGATION_PRIVATE: 0, PROPAGATION_HOST_TO_CONTAINER: 1, PROPAGATION_BIDIRECTIONAL: 2 } },
  NamespaceMode: { values: { POD: 0, CONTAINER: 1, NODE: 2, TARGET: 3 } },
  ProfileType: { values: { RuntimeDefault: 0, Unconfined: 1, Localhost: 2 } },
  PodSandboxState: { values: { SANDBOX_READY: 0, SANDBOX_NOTREADY: 1 } },
  ContainerState: { values: { CONTAINER_CREATED: 0, CONTAINER_RUNNING: 1, CONTAINER_EXITED: 2, CONTAINER_UNKNOWN: 3 } },
};

/** The calls used, as `name: [request, response]`. */
export const RUNTIME_CALLS = {
  Version: ['VersionRequest', 'VersionResponse'],
  RunPodSandbox: ['RunPodSandboxRequest', 'RunPodSandboxResponse'],
  StopPodSandbox: ['StopPodSandboxRequest', 'StopPodSandboxResponse'],
  RemovePodSandbox: ['RemovePodSandboxRequest', 'RemovePodSandboxResponse'],
  PodSandboxStatus: ['PodSandboxStatusRequest', 'PodSandboxStatusResponse'],
  ListPodSandbox: ['ListPodSandboxRequest', 'ListPodSandboxResponse'],
  CreateContainer: ['CreateContainerRequest', 'CreateContainerResponse'],
  StartContainer: ['StartContainerRequest', 'StartContainerResponse'],
  StopContainer: ['StopContainerRequest', 'StopContainerResponse'],
  RemoveContainer: ['RemoveContainerRequest', 'RemoveContainerResponse'],
  ContainerStatus: ['ContainerStatusRequest', 'ContainerStatusResponse'],
  ListContainers: ['ListContainersRequest', 'ListContainersResponse'],
} as const;

export type RuntimeCall = keyof typeof RUNTIME_CALLS;

const methods = Object.fromEntries(
  Object.entries(RUNTIME_CALLS).map(([name, [requestType, responseType]]) => [name, { requestType, responseType }]),
);

/** The descriptor: package `runtime.v1`, service `RuntimeService`. */
export const RUNTIME_V1_DESCRIPTOR = {
  nested: { runtime: { nested: { v1: { nested: { ...messages, ...enums, RuntimeService: { methods } } } } } },
};
