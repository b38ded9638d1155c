/**
 * What the kubelet does with a Pod's container before calling CreateContainer: the Kubernetes container
 * (as `meshcap inject` writes it) becomes a CRI ContainerConfig. Covers what meshcap's containers use:
 * image, command/args with $(VAR) expansion, env (literal and the downward API fields), volume mounts
 * (emptyDir and hostPath, or a directory the test gives), the kubelet's own mounts (/etc/hosts,
 * /dev/termination-log) and the securityContext, with the kubelet's defaults (masked and read-only /proc
 * paths, seccomp Unconfined unless set, no_new_privs from allowPrivilegeEscalation: false) and its
 * runAsNonRoot check.
 */
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ContainerConfig, LinuxContainerSecurityContext, Mount } from '../../src/cri/types.js';
import type { Sandbox } from './harness.js';

export interface K8sSecurityContext {
  runAsUser?: number;
  runAsGroup?: number;
  runAsNonRoot?: boolean;
  readOnlyRootFilesystem?: boolean;
  allowPrivilegeEscalation?: boolean;
  privileged?: boolean;
  capabilities?: { add?: string[]; drop?: string[] };
  seccompProfile?: { type: 'RuntimeDefault' | 'Unconfined' | 'Localhost'; localhostProfile?: string };
}
export interface K8sEnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string }; resourceFieldRef?: { resource: string } };
}
export interface K8sContainer {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: K8sEnvVar[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean; subPath?: string }[];
  securityContext?: K8sSecurityContext;
}
export interface K8sVolume {
  name: string;
  emptyDir?: object;
  hostPath?: { path: string; type?: string };
  [other: string]: unknown;
}

/** The kubelet refused the container before the runtime saw it (CreateContainerConfigError). */
export class KubeletConfigError extends Error {}

// The kubelet's defaults for an unprivileged container (k8s.io/kubernetes pkg/securitycontext).
const MASKED_PATHS = ['/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware'];
const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

export interface KubeletOptions {
  attempt?: number;
  volumes?: K8sVolume[];
  /** Host directories for volumes by name (a Secret's files, a shared emptyDir); overrides `volumes`. */
  volumeDirs?: Record<string, string>;
  /** Pod-level securityContext (runAsUser, seccompProfile...), merged under the container's. */
  podSecurityContext?: K8sSecurityContext;
  serviceAccountName?: string;
  nodeName?: string;
  /** The image's USER as a uid, for the runAsNonRoot check when runAsUser is not set. */
  imageUid?: number;
}

/**
 * The kubelet's hostPath `type` check before the pod starts; with no type, the runtime creates a missing
 * path as a directory (containerd's CRI does), so the mount always works.
 */
function hostPathCheck(name: string, path: string, type: string): void {
  const exists = existsSync(path);
  const isDir = exists && statSync(path).isDirectory();
  if (type === 'Directory' && !isDir) throw new KubeletConfigError(`hostPath volume ${name}: ${path} is not a directory (type: Directory): the pod does not start`);
  if (type === 'File' && !(exists && !isDir)) throw new KubeletConfigError(`hostPath volume ${name}: ${path} is not a file (type: File)`);
  if ((type === 'DirectoryOrCreate' || type === '') && !exists) mkdirSync(path, { recursive: true, mode: 0o755 });
}

/** Pure part: $(VAR) references in command and args, as the kubelet expands them ($$ escapes). */
export function expandVars(text: string, env: Record<string, string>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (whole, name: string | undefined) => {
    if (whole === '$$') return '$';
    return name !== undefined && name in env ? env[name]! : whole;
  });
}

export function kubeletContainer(container: K8sContainer, pod: Sandbox, options: KubeletOptions = {}): ContainerConfig {
  const meta = pod.config.metadata;
  const attempt = options.attempt ?? 0;
  const fields: Record<string, string> = {
    'metadata.name': meta.name,
    'metadata.namespace': meta.namespace,
    'metadata.uid': meta.uid,
    'status.podIP': pod.ip,
    'status.hostIP': '198.18.0.1',
    'spec.serviceAccountName': options.serviceAccountName ?? 'default',
    'spec.nodeName': options.nodeName ?? pod.node.netns,
  };
  const env: Record<string, string> = { KUBERNETES_SERVICE_HOST: '198.18.0.1', KUBERNETES_SERVICE_PORT: '443', KUBERNETES_PORT: 'tcp://198.18.0.1:443' };
  for (const variable of container.env ?? []) {
    if (variable.value !== undefined) env[variable.name] = expandVars(variable.value, env);
    else if (variable.valueFrom?.fieldRef) env[variable.name] = fields[variable.valueFrom.fieldRef.fieldPath] ?? '';
    else if (variable.valueFrom?.resourceFieldRef) env[variable.name] = variable.valueFrom.resourceFieldRef.resource.includes('memory') ? '1073741824' : '2';
    else env[variable.name] = '';
  }

  const security: K8sSecurityContext = { ...options.podSecurityContext, ...container.securityContext };
  const uid = security.runAsUser ?? options.imageUid;
  if (security.runAsNonRoot && uid === 0) throw new KubeletConfigError(`container ${container.name}: runAsNonRoot and the container would run as root`);

  const base = join(pod.config.log_directory!, '..', '..', 'volumes', pod.id);
  const mounts: Mount[] = [];
  for (const vm of container.volumeMounts ?? []) {
    let host = options.volumeDirs?.[vm.name];
    if (!host) {
      const volume = options.volumes?.find((v) => v.name === vm.name);
      if (volume?.hostPath) {
        host = volume.hostPath.path;
        hostPathCheck(volume.name, host, volume.hostPath.type ?? '');
      } else {
        host = join(base, vm.name);
        mkdirSync(host, { recursive: true });
      }
    }
    mounts.push({ container_path: vm.mountPath, host_path: vm.subPath ? join(host, vm.subPath) : host, readonly: vm.readOnly ?? false });
  }
  // The kubelet's own mounts.
  const own = join(base, `${container.name}-${attempt}`);
  mkdirSync(own, { recursive: true });
  writeFileSync(join(own, 'hosts'), `127.0.0.1\tlocalhost\n::1\tlocalhost\n${pod.ip}\t${meta.name}\n`);
  writeFileSync(join(own, 'termination-log'), '');
  mounts.push({ container_path: '/etc/hosts', host_path: join(own, 'hosts') });
  mounts.push({ container_path: '/dev/termination-log', host_path: join(own, 'termination-log') });

  const privileged = security.privileged ?? false;
  const linuxSecurity: LinuxContainerSecurityContext = {
    capabilities: { add_capabilities: security.capabilities?.add ?? [], drop_capabilities: security.capabilities?.drop ?? [] },
    privileged,
    namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' },
    readonly_rootfs: security.readOnlyRootFilesystem ?? false,
    no_new_privs: security.allowPrivilegeEscalation === false,
    masked_paths: privileged ? [] : MASKED_PATHS,
    readonly_paths: privileged ? [] : READONLY_PATHS,
    seccomp: { profile_type: security.seccompProfile?.type ?? 'Unconfined', localhost_ref: security.seccompProfile?.localhostProfile ?? '' },
  };
  if (security.runAsUser !== undefined) linuxSecurity.run_as_user = { value: security.runAsUser };
  if (security.runAsGroup !== undefined) linuxSecurity.run_as_group = { value: security.runAsGroup };

  const config = pod.container({
    name: container.name,
    image: container.image,
    command: (container.command ?? []).map((c) => expandVars(c, env)),
    args: (container.args ?? []).map((a) => expandVars(a, env)),
    env,
    attempt,
    mounts,
    securityContext: linuxSecurity,
  });
  config.annotations = {
    ...config.annotations,
    'io.kubernetes.container.terminationMessagePath': '/dev/termination-log',
  };
  return config;
}
