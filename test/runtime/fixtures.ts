/**
 * Shared pieces of the runtime scenarios: meshcap's image built from the Dockerfile (scripts/image/build.sh,
 * cached by its build context), pods as `meshcap inject` writes them, and rule reads from a pod's netns.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { normaliseSave } from '../helpers/netns.js';
import { MESHCAP_BIN, REPO_ROOT } from '../helpers/paths.js';
import { RuntimeNode, type Sandbox } from './harness.js';
import type { K8sContainer, K8sVolume } from './kubelet.js';

/** The image name `meshcap inject` writes by default; the archive is tagged with it. */
export const MESHCAP_IMAGE = `ghcr.io/meshcap/meshcap:${(JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version}`;

/**
 * The Dockerfile's fallback, built on purpose (scripts/image/build.sh --plain: MESHCAP_SEA=0): node and the
 * one-file build instead of the single executable, what a node that cannot build one ships.
 */
export const MESHCAP_PLAIN_IMAGE = `${MESHCAP_IMAGE}-plain`;

export type ImageVariant = 'sea' | 'plain';
const archives = new Map<ImageVariant, string>();

/** Builds (or finds, for the same build context) the image; returns the docker-archive path. */
export function meshcapImageArchive(variant: ImageVariant = 'sea'): string {
  const known = archives.get(variant);
  if (known) return known;
  // For iterating on tests only: an archive built earlier (CI never sets it).
  if (variant === 'sea' && process.env.MESHCAP_TEST_IMAGE_ARCHIVE && process.env.CI !== 'true') {
    archives.set(variant, process.env.MESHCAP_TEST_IMAGE_ARCHIVE);
    return process.env.MESHCAP_TEST_IMAGE_ARCHIVE;
  }
  const args = [join(REPO_ROOT, 'scripts/image/build.sh'), ...(variant === 'plain' ? ['--plain'] : [])];
  const result = spawnSync('bash', args, { encoding: 'utf8', timeout: 20 * 60_000, maxBuffer: 64 * 1024 * 1024 });
  if (result.status !== 0) throw new Error(`the ${variant} image build failed (exit ${result.status}):\n${(result.stderr ?? '').slice(-4000)}`);
  const archive = result.stdout.trim().split('\n').pop()!;
  archives.set(variant, archive);
  return archive;
}

/** A private containerd node (harness.ts) with the meshcap image imported, built first when missing. */
export async function startNodeWithImage(label: string, options: { snapshotter?: 'overlayfs' | 'native'; variant?: ImageVariant } = {}): Promise<RuntimeNode> {
  const archive = meshcapImageArchive(options.variant);
  const node = await RuntimeNode.start({ label, ...(options.snapshotter ? { snapshotter: options.snapshotter } : {}) });
  await node.importImage(archive);
  return node;
}

/** The image's compressed size in bytes (gzip layers), written by build.sh. */
export function meshcapImageCompressedSize(variant: ImageVariant = 'sea'): number {
  return Number(readFileSync(`${meshcapImageArchive(variant)}.size`, 'utf8').trim());
}

export interface InjectedPod {
  readonly annotations: Record<string, string>;
  readonly labels: Record<string, string>;
  readonly initContainers: K8sContainer[];
  readonly containers: K8sContainer[];
  readonly volumes: K8sVolume[];
}

/** A pod run through the real `meshcap inject` CLI (the same code as the webhook). */
export function injectPod(options: { name?: string; namespace?: string; annotations?: Record<string, string>; injectArgs?: string[] } = {}): InjectedPod {
  const manifest = [
    'apiVersion: v1',
    'kind: Pod',
    'metadata:',
    `  name: ${options.name ?? 'app'}`,
    `  namespace: ${options.namespace ?? 'demo'}`,
    `  annotations: ${JSON.stringify(options.annotations ?? {})}`,
    'spec:',
    '  containers:',
    '  - name: app',
    `    image: ${MESHCAP_IMAGE}`,
    '',
  ].join('\n');
  const result = spawnSync(process.execPath, [MESHCAP_BIN, 'inject', '-f', '-', ...(options.injectArgs ?? [])], { input: manifest, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`meshcap inject failed (${result.status}): ${result.stderr}`);
  const pod = parse(result.stdout) as {
    metadata: { annotations?: Record<string, string>; labels?: Record<string, string> };
    spec: { initContainers?: K8sContainer[]; containers: K8sContainer[]; volumes?: K8sVolume[] };
  };
  return {
    annotations: pod.metadata.annotations ?? {},
    labels: pod.metadata.labels ?? {},
    initContainers: pod.spec.initContainers ?? [],
    containers: pod.spec.containers,
    volumes: pod.spec.volumes ?? [],
  };
}

export function istioInit(pod: InjectedPod): K8sContainer {
  const init = pod.initContainers.find((c) => c.name === 'istio-init');
  if (!init) throw new Error('meshcap inject wrote no istio-init container');
  return init;
}

/** A pod's rules for one backend and family, read from the host, without comments and counters. */
export function podRules(pod: Sandbox, variant: 'nft' | 'legacy', family: 4 | 6 = 4): string {
  const tool = `${family === 4 ? 'iptables' : 'ip6tables'}-${variant}-save`;
  const result = pod.exec(tool, []);
  if (result.code !== 0) throw new Error(`${tool} in ${pod.netnsPath} failed: ${result.stderr}`);
  return normaliseSave(result.stdout);
}

/** The `-A ...ISTIO...` rule lines (the mesh rules meshcap counts, jumps included). */
export function meshRules(save: string): string[] {
  return save.split('\n').filter((line) => line.startsWith('-A ') && line.includes('ISTIO'));
}

/** Istio 1.5's nat rules for the default injection args, as its istio-iptables restored them (--noflush). */
export const ISTIO_15_RULES = `*nat
-N ISTIO_INBOUND
-N ISTIO_REDIRECT
-N ISTIO_IN_REDIRECT
-N ISTIO_OUTPUT
-A ISTIO_INBOUND -p tcp --dport 22 -j RETURN
-A ISTIO_INBOUND -p tcp --dport 15090 -j RETURN
-A ISTIO_INBOUND -p tcp --dport 15021 -j RETURN
-A ISTIO_INBOUND -p tcp --dport 15020 -j RETURN
-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT
-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001
-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006
-A PREROUTING -p tcp -j ISTIO_INBOUND
-A OUTPUT -p tcp -j ISTIO_OUTPUT
-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN
-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -m owner --gid-owner 1337 -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN
-A ISTIO_OUTPUT -j ISTIO_REDIRECT
COMMIT
`;

export { serveIn, type ProbeServer as Listener } from '../helpers/probe-server.js';

export interface Answer {
  ok: boolean;
  reply?: string;
  error?: string;
}

/** One real TCP connection from inside a netns, as a given uid; the probe server's answer. */
export function connectFrom(netnsPath: string, host: string, port: number, uid: number, timeoutMs = 3000): Answer {
  const result = spawnSync('nsenter', [`--net=${netnsPath}`, '--', process.execPath, MESHCAP_BIN, 'probe-connect', host, String(port), '--uid', String(uid), '--gid', String(uid), '--timeout', String(timeoutMs)], {
    encoding: 'utf8',
    timeout: timeoutMs + 20_000,
  });
  try {
    return JSON.parse(result.stdout) as Answer;
  } catch {
    return { ok: false, error: `probe-connect exit ${result.status}: ${result.stderr}` };
  }
}

/** A stack trace in a container's output (a user's or environment's problem must never print one). */
export const STACK_TRACE = /^\s+at .+(\(.+:\d+:\d+\)|:\d+:\d+)$/m;
