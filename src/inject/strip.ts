/**
 * The pod as the user wrote it, from the pod as received: what a previous
 * injection recorded in its status annotation is removed, the user's own
 * istio-proxy / istio-init are set aside as overrides, and the app's Prometheus
 * annotations the previous proxy took over are restored. Pure.
 */
import { Annotation } from './annotations.js';
import { type Json, type JsonObject, asArray, asObject, isObject, stringMap } from './json.js';
import { PROBERS_ENV } from './probes.js';
import { scrapeSettings } from './prometheus.js';
import { parseOverrides, parseStatus } from './status-annotation.js';
import { INIT_NAME, PROXY_NAME, VALIDATION_NAME } from './target.js';

export interface Stripped {
  readonly labels: Json | undefined;
  readonly annotations: JsonObject;
  readonly initContainers: JsonObject[];
  readonly containers: JsonObject[];
  readonly volumes: Json[];
  /** The user's own istio-proxy / istio-init / istio-validation, laid over the generated ones. */
  readonly overrides: JsonObject[];
  readonly overridesText: string;
  /** The app's own Prometheus annotations (any spelling), moved into the proxy's env when metrics are merged. */
  readonly prometheus: Record<string, string>;
  /** The previous proxy's record of the app probes it took over, to restore them. */
  readonly probers: string | undefined;
}

/**
 * The pod as the user wrote it: what a previous injection (named in the status
 * annotation) added is removed, from both container lists whatever layout it
 * used, so re-injection is idempotent and can switch layouts cleanly.
 */
export function stripPrevious(metadata: JsonObject, spec: JsonObject, subject: string): Stripped {
  const annotations: JsonObject = { ...(asObject(metadata.annotations) ?? {}) };
  const texts = stringMap(annotations);
  const previous = parseStatus(texts[Annotation.status], subject);
  const injected = new Set([...(previous?.initContainers ?? []), ...(previous?.containers ?? [])]);
  const injectedVolumes = new Set(previous?.volumes ?? []);
  const nameOf = (item: Json): string | undefined => (isObject(item) && typeof item.name === 'string' ? item.name : undefined);
  const objects = (list: Json | undefined): JsonObject[] => (asArray(list) ?? []).filter(isObject);

  const allInit = objects(spec.initContainers);
  const allContainers = objects(spec.containers);
  const oldProxy = [...allInit, ...allContainers].find((c) => injected.has(PROXY_NAME) && c.name === PROXY_NAME);

  let overrides: JsonObject[] = [];
  let overridesText = '';
  if (previous && texts[Annotation.overrides] !== undefined) {
    overridesText = texts[Annotation.overrides]!;
    overrides = parseOverrides(overridesText, subject);
  }
  const ours = (c: JsonObject) => c.name === PROXY_NAME || c.name === INIT_NAME || c.name === VALIDATION_NAME;
  const isOverride = (c: JsonObject) => !injected.has(nameOf(c) ?? '') && ours(c);
  if (!previous || texts[Annotation.overrides] === undefined) {
    const fromInit = allInit.filter(isOverride);
    const fromContainers = allContainers.filter(isOverride);
    overrides = [...fromInit, ...fromContainers];
    if (overrides.length > 0) {
      const record: JsonObject = {};
      if (fromInit.length > 0) record.initContainers = fromInit;
      if (fromContainers.length > 0) record.containers = fromContainers;
      overridesText = JSON.stringify(record);
    }
  }
  const keep = (c: JsonObject) => !injected.has(nameOf(c) ?? '') && !ours(c);

  if (previous) {
    delete annotations[Annotation.status];
    // Restore the app's own scrape settings that the previous injection moved into the proxy.
    const saved = envValue(oldProxy, 'ISTIO_PROMETHEUS_ANNOTATIONS');
    if (texts[Annotation.promPath] === '/stats/prometheus') {
      for (const key of [Annotation.promScrape, Annotation.promPort, Annotation.promPath]) delete annotations[key];
      if (saved) {
        try {
          const parsed = JSON.parse(saved) as unknown;
          if (isObject(parsed)) {
            // meshcap saves only the annotations the app had, an empty value included; Istio saves its
            // struct {scrape, path, port} whole (in that order), "" standing for an absent annotation.
            const istioForm = Object.keys(parsed).join(',') === 'scrape,path,port';
            for (const [key, value] of Object.entries({ scrape: Annotation.promScrape, port: Annotation.promPort, path: Annotation.promPath })) {
              if (typeof parsed[key] === 'string' && !(istioForm && parsed[key] === '')) annotations[value] = parsed[key];
            }
          }
        } catch {
          // An unreadable saved value is dropped: the scrape settings are re-derived below.
        }
      }
    }
  }
  const found = scrapeSettings(stringMap(annotations));
  const prometheus: Record<string, string> = {};
  for (const key of ['scrape', 'port', 'path'] as const) {
    if (found[key] !== undefined) prometheus[key] = found[key];
  }
  return {
    labels: metadata.labels,
    annotations,
    initContainers: allInit.filter(keep),
    containers: allContainers.filter(keep),
    volumes: (asArray(spec.volumes) ?? []).filter((v) => !injectedVolumes.has(nameOf(v) ?? '')),
    overrides,
    overridesText,
    prometheus,
    probers: envValue(oldProxy, PROBERS_ENV),
  };
}

export function envValue(container: JsonObject | undefined, name: string): string | undefined {
  for (const item of asArray(container?.env) ?? []) {
    if (isObject(item) && item.name === name && typeof item.value === 'string') return item.value;
  }
  return undefined;
}
