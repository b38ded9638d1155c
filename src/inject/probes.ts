/**
 * App probe rewriting, as Istio's injector does it (rewriteAppHTTPProbe):
 * kubelet's probes would be captured by the sidecar and, under STRICT mTLS,
 * fail; so httpGet / tcpSocket / grpc probes and httpGet / tcpSocket lifecycle
 * hooks of every app container (init ones too) become an httpGet to the
 * agent's status port, which capture leaves alone, at /app-health/<c>/readyz|
 * livez|startupz or /app-lifecycle/<c>/prestopz|poststartz. The originals go
 * to the proxy in env ISTIO_KUBE_APP_PROBERS, in the JSON Istio's agent reads.
 *
 * Re-injection first puts the originals recorded by the previous injection
 * back (the pod as the user wrote it, like the rest of stripPrevious), then
 * rewrites afresh: injecting twice gives the same pod, probes of containers
 * added since are rewritten too, entries of vanished probes are dropped, and
 * opting out (or a status port change) after injection works. Pure.
 */
import { ConfigError } from '../config/parse.js';
import { type JsonObject, asArray, clone, isObject } from './json.js';

export const PROBERS_ENV = 'ISTIO_KUBE_APP_PROBERS';

export interface ProbeRewrite {
  readonly initContainers: JsonObject[];
  readonly containers: JsonObject[];
  /** The ISTIO_KUBE_APP_PROBERS value; undefined when no probe goes through the agent. */
  readonly probers: string | undefined;
}

export interface ProbeOptions {
  readonly rewriteAppProbes: boolean;
  readonly statusPort: number;
}

type Slot = { readonly key: string; readonly hook: boolean; readonly path: (container: string) => string };

const SLOTS: readonly Slot[] = [
  { key: 'readinessProbe', hook: false, path: (c) => `/app-health/${c}/readyz` },
  { key: 'livenessProbe', hook: false, path: (c) => `/app-health/${c}/livez` },
  { key: 'startupProbe', hook: false, path: (c) => `/app-health/${c}/startupz` },
  { key: 'preStop', hook: true, path: (c) => `/app-lifecycle/${c}/prestopz` },
  { key: 'postStart', hook: true, path: (c) => `/app-lifecycle/${c}/poststartz` },
];

/** Handler kinds in the order Istio looks at them; lifecycle hooks have no grpc. */
const PROBE_HANDLERS = ['httpGet', 'tcpSocket', 'grpc'] as const;
const HOOK_HANDLERS = ['httpGet', 'tcpSocket'] as const;

/**
 * `containers` are app containers only (the injected ones already stripped);
 * `previous` is the old proxy's ISTIO_KUBE_APP_PROBERS on re-injection.
 */
export function rewriteAppProbes(
  pod: { readonly initContainers: readonly JsonObject[]; readonly containers: readonly JsonObject[] },
  previous: string | undefined,
  options: ProbeOptions,
  subject: string,
): ProbeRewrite {
  const saved = parseProbers(previous, subject);
  // Port 0 means no agent status server: there is nothing to send probes to.
  const active = options.rewriteAppProbes && options.statusPort !== 0;
  const probers = new Map<string, JsonObject>();
  const each = (container: JsonObject): JsonObject => {
    if (typeof container.name !== 'string') return container;
    let out = container;
    for (const slot of SLOTS) {
      const holder = slotHolder(out, slot);
      if (!holder) continue;
      const path = slot.path(container.name);
      let handler = restore(holder, slot, saved.get(path), path);
      if (active) {
        const rewritten = rewrite(handler, slot, path, out, options.statusPort);
        if (rewritten) {
          probers.set(path, rewritten.entry);
          handler = rewritten.holder;
        }
      }
      if (handler !== holder) out = withSlot(out, slot, handler);
    }
    return out;
  };
  const initContainers = pod.initContainers.map(each);
  const containers = pod.containers.map(each);
  return { initContainers, containers, probers: probers.size > 0 ? goJson(probers) : undefined };
}

function slotHolder(container: JsonObject, slot: Slot): JsonObject | undefined {
  const parent = slot.hook ? container.lifecycle : container;
  const holder = isObject(parent) ? parent[slot.key] : undefined;
  return isObject(holder) ? holder : undefined;
}

function withSlot(container: JsonObject, slot: Slot, holder: JsonObject): JsonObject {
  if (!slot.hook) return { ...container, [slot.key]: holder };
  return { ...container, lifecycle: { ...(container.lifecycle as JsonObject), [slot.key]: holder } };
}

/** A probe a previous injection pointed at the agent gets its recorded original handler back. */
function restore(holder: JsonObject, slot: Slot, entry: JsonObject | undefined, path: string): JsonObject {
  const action = holder.httpGet;
  if (!entry || !isObject(action) || action.path !== path) return holder;
  const kind = (slot.hook ? HOOK_HANDLERS : PROBE_HANDLERS).find((k) => isObject(entry[k]));
  if (!kind) return holder;
  const original = clone(entry[kind] as JsonObject);
  // Go writes an unset gRPC service as null; the API never needs it spelled out.
  if (kind === 'grpc' && original.service === null) delete original.service;
  return replaceKey(holder, 'httpGet', kind, original);
}

function rewrite(
  holder: JsonObject,
  slot: Slot,
  path: string,
  container: JsonObject,
  statusPort: number,
): { holder: JsonObject; entry: JsonObject } | undefined {
  const kind = (slot.hook ? HOOK_HANDLERS : PROBE_HANDLERS).find((k) => isObject(holder[k]));
  if (!kind) return undefined; // exec, sleep: kubelet runs them inside the container, no network involved
  const action = holder[kind] as JsonObject;
  const port = kind === 'grpc' ? grpcPort(action.port) : resolvePort(action.port, container);
  // An unknown named port stays for kubelet to report; a probe already on the status port needs no agent.
  if (port === undefined || port === statusPort) return undefined;

  const entry: JsonObject = { [kind]: originalAction(kind, action, port) };
  if (!slot.hook && typeof holder.timeoutSeconds === 'number' && holder.timeoutSeconds !== 0) entry.timeoutSeconds = holder.timeoutSeconds;

  const target: JsonObject = { path, port: statusPort };
  if (kind === 'httpGet') {
    // Scheme and headers stay, as in Istio; host goes: kubelet must reach the agent on the pod IP, whatever the app's host.
    for (const [key, value] of Object.entries(action)) if (key !== 'host' && key !== 'path' && key !== 'port') target[key] = value;
    // Kubelet -> HTTP -> agent -> HTTPS -> app: the agent does the TLS.
    if (target.scheme === 'HTTPS') target.scheme = 'HTTP';
  }
  return { holder: replaceKey(holder, kind, 'httpGet', target), entry };
}

/** The recorded original, with the fields and field order Istio's agent config (Go structs) has. */
function originalAction(kind: (typeof PROBE_HANDLERS)[number], action: JsonObject, port: number): JsonObject {
  const text = (key: string): string | undefined => (typeof action[key] === 'string' && action[key] !== '' ? (action[key] as string) : undefined);
  const out: JsonObject = {};
  if (kind === 'grpc') {
    out.port = port;
    out.service = typeof action.service === 'string' ? action.service : null;
    return out;
  }
  if (kind === 'httpGet' && text('path') !== undefined) out.path = text('path')!;
  out.port = port;
  if (text('host') !== undefined) out.host = text('host')!;
  if (kind === 'tcpSocket') return out;
  if (text('scheme') !== undefined) out.scheme = text('scheme')!;
  const headers = (asArray(action.httpHeaders) ?? []).filter(isObject);
  if (headers.length > 0) {
    out.httpHeaders = headers.map((h) => ({ name: typeof h.name === 'string' ? h.name : '', value: typeof h.value === 'string' ? h.value : '' }));
  }
  return out;
}

/** A probe port as kubelet reads it: a number, a name of one of the container's ports, or digits in a string. */
function resolvePort(port: unknown, container: JsonObject): number | undefined {
  if (typeof port === 'number') return Number.isInteger(port) ? port : undefined;
  if (typeof port !== 'string') return undefined;
  for (const item of asArray(container.ports) ?? []) {
    if (isObject(item) && item.name === port && typeof item.containerPort === 'number') return item.containerPort;
  }
  return /^[0-9]{1,5}$/.test(port) ? Number(port) : undefined;
}

function grpcPort(port: unknown): number | undefined {
  return typeof port === 'number' && Number.isInteger(port) ? port : undefined;
}

/** `object` with `from` replaced by `to` at the same position, so the YAML reads in the user's order. */
function replaceKey(object: JsonObject, from: string, to: string, value: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const [key, item] of Object.entries(object)) {
    if (key === from) out[to] = value;
    else if (key !== to) out[key] = item;
  }
  return out;
}

function parseProbers(text: string | undefined, subject: string): Map<string, JsonObject> {
  const map = new Map<string, JsonObject>();
  if (text === undefined) return map;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  if (!isObject(value)) {
    // Without it the probes that point at the agent cannot be restored, and would fail once re-injected.
    throw new ConfigError(`env ${PROBERS_ENV} of the injected istio-proxy`, text, 'is not a JSON object of probes',
      'restore the value the injector wrote, or remove the injected containers and the sidecar.istio.io/status annotation', `on ${subject}`);
  }
  for (const [path, entry] of Object.entries(value)) if (isObject(entry)) map.set(path, entry);
  return map;
}

/** JSON as Go's encoding/json writes a map: keys sorted, and <, >, & and U+2028/9 escaped. */
function goJson(probers: ReadonlyMap<string, JsonObject>): string {
  const sorted: JsonObject = {};
  for (const path of [...probers.keys()].sort()) sorted[path] = probers.get(path)!;
  return JSON.stringify(sorted).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
