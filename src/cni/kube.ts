/**
 * The API-server path, used only when the runtime passes no pod annotations:
 * a kubeconfig the agent writes (token by `tokenFile`, so a rotated token is
 * read by the next ADD without rewriting anything), and a bounded, retried
 * `GET pod` whose answer is used only if its UID is the sandbox's pod.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import YAML from 'yaml';
import type { PodRef } from './request.js';
import { CniCode, CniError, details } from './spec.js';

export interface KubeconfigInput {
  readonly server: string;
  readonly caData: string;
  readonly tokenFile: string;
}

/** JSON is YAML: kubectl and client-go read it, and the plugin needs no YAML writer. */
export function renderKubeconfig(input: KubeconfigInput): string {
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'local', cluster: { server: input.server, 'certificate-authority-data': Buffer.from(input.caData).toString('base64') } }],
    users: [{ name: 'meshcap-cni', user: { tokenFile: input.tokenFile } }],
    contexts: [{ name: 'meshcap-cni', context: { cluster: 'local', user: 'meshcap-cni' } }],
    'current-context': 'meshcap-cni',
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}

export interface ApiTarget {
  readonly server: URL;
  readonly ca: Buffer | undefined;
  readonly token: () => string | undefined;
  readonly insecure: boolean;
}

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export function readKubeconfig(path: string): ApiTarget {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new CniError(CniCode.TryAgainLater, `no kubeconfig at ${path}, and the runtime passed no pod annotations`, details(`${(error as NodeJS.ErrnoException).code ?? (error as Error).message}: the meshcap CNI agent has not written it yet (or the runtime does not support the io.kubernetes.cri.pod-annotations capability)`, "start the meshcap-cni-node DaemonSet on this node; the kubelet retries the pod"));
  }
  let config: Obj;
  try {
    config = YAML.parse(text) as Obj;
  } catch (error) {
    throw new CniError(CniCode.TryAgainLater, `the kubeconfig ${path} cannot be parsed`, details((error as Error).message, 'restart the meshcap-cni-node agent on this node; it rewrites the kubeconfig'));
  }
  const contextName = config?.['current-context'];
  const context = (config?.contexts as Obj[] | undefined)?.find((c) => c.name === contextName)?.context ?? (config?.contexts as Obj[] | undefined)?.[0]?.context;
  const cluster = (config?.clusters as Obj[] | undefined)?.find((c) => c.name === context?.cluster)?.cluster ?? (config?.clusters as Obj[] | undefined)?.[0]?.cluster;
  const user = (config?.users as Obj[] | undefined)?.find((u) => u.name === context?.user)?.user ?? (config?.users as Obj[] | undefined)?.[0]?.user ?? {};
  if (typeof cluster?.server !== 'string') {
    throw new CniError(CniCode.TryAgainLater, `the kubeconfig ${path} names no API server`, details('clusters[].cluster.server is missing', 'restart the meshcap-cni-node agent on this node; it rewrites the kubeconfig'));
  }
  let ca: Buffer | undefined;
  if (typeof cluster['certificate-authority-data'] === 'string') ca = Buffer.from(cluster['certificate-authority-data'], 'base64');
  else if (typeof cluster['certificate-authority'] === 'string') ca = readFileSync(cluster['certificate-authority']);
  const tokenFile = typeof user.tokenFile === 'string' ? user.tokenFile : undefined;
  const inline = typeof user.token === 'string' ? user.token : undefined;
  return {
    server: new URL(cluster.server),
    ca,
    insecure: cluster['insecure-skip-tls-verify'] === true,
    token: () => {
      if (!tokenFile) return inline;
      try {
        return readFileSync(tokenFile, 'utf8').trim();
      } catch {
        return undefined;
      }
    },
  };
}

interface Answer {
  readonly status: number;
  readonly body: string;
}

function get(target: ApiTarget, path: string, timeoutMs: number): Promise<Answer> {
  // Loaded on use, by require (the single executable runs the plugin as a script, where import() has
  // no loader): only the rare API fallback needs it, and it is not cheap to load on every ADD.
  const { request } = createRequire('/')('node:https') as typeof import('node:https');
  return new Promise((resolve, reject) => {
    const token = target.token();
    const req = request(
      new URL(path, target.server),
      {
        method: 'GET',
        headers: { Accept: 'application/json', 'User-Agent': 'meshcap-cni', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
        ...(target.ca ? { ca: target.ca } : {}),
        rejectUnauthorized: !target.insecure,
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

export interface LookupOptions {
  readonly timeoutSeconds: number;
  readonly log: (line: string) => void;
  /** Between attempts; injectable so unit tests need not wait. */
  readonly pauseMs?: number;
}

/**
 * The pod's annotations from the API server. Every failure is retried (a late
 * informer's 404, a rotated token's 401, a restarting API server) until the
 * deadline; then code 11, so the kubelet retries the sandbox. Never a skip.
 */
export async function lookupPodAnnotations(target: ApiTarget, pod: PodRef, options: LookupOptions): Promise<Record<string, string>> {
  const deadline = Date.now() + options.timeoutSeconds * 1000;
  const path = `/api/v1/namespaces/${encodeURIComponent(pod.namespace)}/pods/${encodeURIComponent(pod.name)}`;
  let last = 'no attempt made';
  for (let attempt = 1; ; attempt++) {
    try {
      const answer = await get(target, path, Math.max(1000, Math.min(5000, deadline - Date.now())));
      if (answer.status === 200) {
        const object = JSON.parse(answer.body) as Obj;
        const uid = object?.metadata?.uid;
        if (pod.uid === undefined || uid === pod.uid) {
          const annotations = object?.metadata?.annotations ?? {};
          const out: Record<string, string> = {};
          for (const [key, value] of Object.entries(annotations)) if (typeof value === 'string') out[key] = value;
          return out;
        }
        last = `the API server has pod ${pod.namespace}/${pod.name} with uid ${uid}, but the sandbox is for uid ${pod.uid} (a re-created pod of the same name)`;
      } else {
        const reason = (() => {
          try {
            return (JSON.parse(answer.body) as Obj)?.message as string | undefined;
          } catch {
            return undefined;
          }
        })();
        last = `GET ${path}: HTTP ${answer.status}${reason ? ` (${reason})` : ''}`;
      }
    } catch (error) {
      last = `GET ${new URL(path, target.server).href}: ${(error as Error).message}`;
    }
    options.log(`API lookup attempt ${attempt} failed: ${last}`);
    const pause = options.pauseMs ?? 1000;
    if (Date.now() + pause >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, pause));
  }
  const unauthorized = /HTTP 401/.test(last);
  throw new CniError(
    CniCode.TryAgainLater,
    `cannot read pod ${pod.namespace}/${pod.name} from the API server (try again later)`,
    details(
      `${last}${unauthorized ? ' (Unauthorized: the token in the kubeconfig tokenFile is expired or revoked)' : ''}; the runtime passed no pod annotations, so the capture settings must come from the API`,
      unauthorized ? 'restart the meshcap-cni-node agent on this node so it refreshes the token' : 'check that the API server is reachable from the node; the kubelet retries the pod',
    ),
  );
}
