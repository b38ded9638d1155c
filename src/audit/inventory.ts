/**
 * The node's sandboxes as the audit needs them, from the runtime's CRI:
 * ListPodSandbox for ids, metadata and annotations (the kubelet copies the
 * pod's annotations into the sandbox config), then PodSandboxStatus (verbose)
 * for the ready ones that look injected, for their addresses and netns path.
 * Uninjected sandboxes cost one list entry and nothing more.
 */
import { netnsPathFromInfo } from '../cri/client.js';
import type { Sandbox } from './types.js';

/** What the audit calls on a CRI client (src/cri's CriClient has this shape). */
export interface SandboxSource {
  listPodSandbox(): Promise<readonly ListedSandbox[]>;
  podSandboxStatus(id: string, verbose: boolean): Promise<SandboxStatusAnswer>;
}

export interface ListedSandbox {
  readonly id: string;
  readonly metadata: { readonly name: string; readonly namespace: string; readonly uid: string } | null;
  readonly state: string;
  readonly annotations: Readonly<Record<string, string>>;
}

export interface SandboxStatusAnswer {
  readonly status: { readonly network: { readonly ip: string; readonly additional_ips: readonly { readonly ip: string }[] } | null } | null;
  readonly info: Readonly<Record<string, string>>;
}

/** Annotations that mark a sandbox as one the audit looks at (desired.ts decides for sure). */
const INJECTION_MARK = 'sidecar.istio.io/status';

export async function criSandboxes(cri: SandboxSource): Promise<Sandbox[]> {
  const listed = await cri.listPodSandbox();
  const out: Sandbox[] = [];
  for (const item of listed) {
    const ready = item.state === 'SANDBOX_READY';
    const base = {
      id: item.id,
      namespace: item.metadata?.namespace ?? '',
      name: item.metadata?.name ?? item.id.slice(0, 12),
      uid: item.metadata?.uid ?? '',
      ready,
      annotations: item.annotations ?? {},
    };
    if (!ready || base.annotations[INJECTION_MARK] === undefined) {
      out.push({ ...base, addresses: [] });
      continue;
    }
    let answer: SandboxStatusAnswer;
    try {
      answer = await cri.podSandboxStatus(item.id, true);
    } catch {
      // Removed between the list and the status: the next audit will not list it.
      continue;
    }
    const network = answer.status?.network;
    const addresses = network ? [network.ip, ...network.additional_ips.map((a) => a.ip)].filter((ip) => ip !== '') : [];
    const netnsPath = netnsPathFromInfo(answer.info);
    out.push({ ...base, addresses, ...(netnsPath ? { netnsPath } : {}) });
  }
  return out;
}
