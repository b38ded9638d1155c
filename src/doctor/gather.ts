import { NOT_FOUND_EXIT, type Runner } from './runner.js';

/**
 * Collects what `meshcap doctor --pod` analyses, through kubectl: the pod
 * object, its events, and current and previous logs of its init containers
 * and mesh proxy containers. The runner is injected so tests can fake kubectl.
 */

export interface GatherResult {
  /** All outputs, each under a `=== <command> ===` header line. */
  readonly text: string;
  /** Commands that succeeded with some output. */
  readonly gathered: number;
  /** kubectl itself could not be run. */
  readonly kubectlMissing: boolean;
  /** One-line remarks for the operator (failed calls that matter). */
  readonly notes: readonly string[];
}

/** Long-running proxies can log a lot; their recent history is what matters. */
const PROXY_LOG_TAIL = '--tail=2000';
const PROXY_CONTAINERS = new Set(['istio-proxy', 'istio-validation', 'linkerd-proxy', 'kuma-sidecar', 'consul-dataplane']);

export async function gatherPod(pod: string, namespace: string | undefined, run: Runner): Promise<GatherResult> {
  const ns = namespace === undefined ? [] : ['-n', namespace];
  const parts: string[] = [];
  const notes: string[] = [];
  let gathered = 0;

  const call = async (args: readonly string[]): Promise<{ ok: boolean; stdout: string; missing: boolean; why: string }> => {
    const result = await run('kubectl', args);
    const header = `=== kubectl ${args.join(' ')} ===`;
    if (result.code === NOT_FOUND_EXIT && result.stdout === '') {
      return { ok: false, stdout: '', missing: true, why: '' };
    }
    if (result.code === 0 && result.stdout.trim() !== '') {
      gathered += 1;
      parts.push(header, trimEnd(result.stdout));
      return { ok: true, stdout: result.stdout, missing: false, why: '' };
    }
    const why = lastLine(result.stderr) || (result.code === 0 ? 'no output' : `exit ${result.code}`);
    parts.push(header, `(no output: ${why})`);
    return { ok: result.code === 0, stdout: result.stdout, missing: false, why };
  };

  const podJson = await call(['get', 'pod', pod, ...ns, '-o', 'json']);
  if (podJson.missing) {
    return {
      text: '',
      gathered: 0,
      kubectlMissing: true,
      notes: [],
    };
  }
  if (!podJson.ok) {
    const where = namespace === undefined ? '' : ` in namespace ${namespace}`;
    notes.push(`could not read pod ${pod}${where}: ${podJson.why}`);
  }

  await call(['get', 'events', ...ns, '--field-selector', `involvedObject.name=${pod}`]);

  for (const { name, proxy } of containersToLog(podJson.stdout)) {
    const tail = proxy ? [PROXY_LOG_TAIL] : [];
    await call(['logs', pod, ...ns, '-c', name, ...tail]);
    await call(['logs', pod, ...ns, '-c', name, '--previous', ...tail]);
  }

  return { text: parts.length === 0 ? '' : `${parts.join('\n')}\n`, gathered, kubectlMissing: false, notes };
}

/** Init containers in order, then mesh proxy containers from the regular list. */
export function containersToLog(podJson: string): Array<{ name: string; proxy: boolean }> {
  let pod: unknown;
  try {
    pod = JSON.parse(podJson);
  } catch {
    return [];
  }
  const spec = field(pod, 'spec');
  const out: Array<{ name: string; proxy: boolean }> = [];
  const seen = new Set<string>();
  const add = (name: string, proxy: boolean): void => {
    if (seen.has(name)) return;
    seen.add(name);
    out.push({ name, proxy });
  };
  for (const c of list(field(spec, 'initContainers'))) {
    const name = field(c, 'name');
    // A native sidecar proxy is an init container that keeps running: treat it as a proxy.
    if (typeof name === 'string') add(name, PROXY_CONTAINERS.has(name) && name !== 'istio-validation');
  }
  for (const c of list(field(spec, 'containers'))) {
    const name = field(c, 'name');
    if (typeof name === 'string' && PROXY_CONTAINERS.has(name)) add(name, true);
  }
  return out;
}

function field(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>)[key] : undefined;
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

/** kubectl puts klog noise first and its verdict last ("The connection to the server ... was refused"). */
function lastLine(text: string): string {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  return lines.length === 0 ? '' : (lines[lines.length - 1] ?? '').trim();
}

function trimEnd(text: string): string {
  return text.replace(/\n{1,8}$/, '');
}
