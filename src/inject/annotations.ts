/**
 * The pod annotations that shape injection, read and validated with the same
 * value parsers as the istio-iptables flags (src/config/values.ts), so an
 * annotation is accepted exactly when the flag it becomes would be. A bad value
 * is a ConfigError naming the annotation and the value: the pod is rejected,
 * never injected with something the init container would choke on. Pure.
 */
import YAML from 'yaml';
import { parseGoBool } from '../config/argv.js';
import { ConfigError } from '../config/parse.js';
import {
  type Parsed,
  parseCidrList,
  parseInterfaceList,
  parsePort,
  parsePortList,
  parsePortListOrAll,
} from '../config/values.js';
import { isObject, type JsonObject } from './json.js';
import type { InjectSettings } from './settings.js';

export const Annotation = {
  inject: 'sidecar.istio.io/inject',
  status: 'sidecar.istio.io/status',
  overrides: 'proxy.istio.io/overrides',
  proxyConfig: 'proxy.istio.io/config',
  interceptionMode: 'sidecar.istio.io/interceptionMode',
  includeOutboundIPRanges: 'traffic.sidecar.istio.io/includeOutboundIPRanges',
  excludeOutboundIPRanges: 'traffic.sidecar.istio.io/excludeOutboundIPRanges',
  includeInboundPorts: 'traffic.sidecar.istio.io/includeInboundPorts',
  excludeInboundPorts: 'traffic.sidecar.istio.io/excludeInboundPorts',
  includeOutboundPorts: 'traffic.sidecar.istio.io/includeOutboundPorts',
  excludeOutboundPorts: 'traffic.sidecar.istio.io/excludeOutboundPorts',
  excludeInterfaces: 'traffic.sidecar.istio.io/excludeInterfaces',
  rerouteVirtualInterfaces: 'istio.io/reroute-virtual-interfaces',
  kubevirtInterfaces: 'traffic.sidecar.istio.io/kubevirtInterfaces',
  statusPort: 'status.sidecar.istio.io/port',
  readinessInitialDelay: 'readiness.status.sidecar.istio.io/initialDelaySeconds',
  readinessPeriod: 'readiness.status.sidecar.istio.io/periodSeconds',
  readinessFailureThreshold: 'readiness.status.sidecar.istio.io/failureThreshold',
  nativeSidecar: 'sidecar.istio.io/nativeSidecar',
  rewriteAppHTTPProbers: 'sidecar.istio.io/rewriteAppHTTPProbers',
  agentLogLevel: 'sidecar.istio.io/agentLogLevel',
  proxyLogLevel: 'sidecar.istio.io/logLevel',
  componentLogLevel: 'sidecar.istio.io/componentLogLevel',
  proxyCPU: 'sidecar.istio.io/proxyCPU',
  proxyMemory: 'sidecar.istio.io/proxyMemory',
  proxyCPULimit: 'sidecar.istio.io/proxyCPULimit',
  proxyMemoryLimit: 'sidecar.istio.io/proxyMemoryLimit',
  proxyImage: 'sidecar.istio.io/proxyImage',
  userVolume: 'sidecar.istio.io/userVolume',
  userVolumeMount: 'sidecar.istio.io/userVolumeMount',
  defaultContainer: 'kubectl.kubernetes.io/default-container',
  defaultLogsContainer: 'kubectl.kubernetes.io/default-logs-container',
  rev: 'istio.io/rev',
  promScrape: 'prometheus.io/scrape',
  promPort: 'prometheus.io/port',
  promPath: 'prometheus.io/path',
  mergeMetrics: 'prometheus.istio.io/merge-metrics',
  templates: 'inject.istio.io/templates',
} as const;

/** The Istio injection templates meshcap implements (Istio's chart has more: grpc-agent, grpc-simple, waypoint, ...). */
export type TemplateName = 'sidecar' | 'gateway';

export type Mode = 'REDIRECT' | 'TPROXY' | 'NONE';

/** Everything the annotations decide, already validated. Raw strings are kept where they go into args verbatim. */
export interface PodOptions {
  /** inject.istio.io/templates; any name meshcap does not implement is refused. */
  readonly template: TemplateName;
  readonly mode: Mode;
  readonly includeOutboundIPRanges: string;
  readonly excludeOutboundIPRanges: string;
  readonly includeInboundPorts: string;
  readonly excludeInboundPorts: string;
  /** undefined: flag not emitted (Istio emits -q/-o only when set). */
  readonly includeOutboundPorts: string | undefined;
  readonly excludeOutboundPorts: string | undefined;
  readonly rerouteInterfaces: string | undefined;
  readonly excludeInterfaces: string | undefined;
  readonly statusPort: number;
  readonly readiness: { readonly initialDelaySeconds: number; readonly periodSeconds: number; readonly failureThreshold: number };
  readonly native: boolean;
  readonly hold: boolean;
  /** App probes go through the agent's status port (probes.ts). */
  readonly rewriteAppProbes: boolean;
  readonly agentLogLevel: string;
  readonly proxyLogLevel: string;
  readonly componentLogLevel: string;
  /** proxy.istio.io/config proxyMetadata, in order: env of both istio-init and istio-proxy. */
  readonly proxyMetadata: readonly (readonly [string, string])[];
  /** proxy.istio.io/config without proxyMetadata-derived defaults, for PROXY_CONFIG. */
  readonly proxyConfig: JsonObject;
  /** From the proxyCPU/Memory annotations; undefined means the settings' default resources. */
  readonly resources: JsonObject | undefined;
  readonly proxyImage: string | undefined;
  /** sidecar.istio.io/userVolume: extra pod volumes for the proxy, `{name, ...source}`, sorted by name. */
  readonly userVolumes: readonly JsonObject[];
  /** sidecar.istio.io/userVolumeMount: extra proxy mounts, `{name, ...mount}`, sorted by name. */
  readonly userVolumeMounts: readonly JsonObject[];
}

/** Where the pod came from, for messages: `Deployment "default/hello"`. */
export type Subject = string;

function invalid(annotation: string, value: string, problem: string, allowed: string, subject: Subject): ConfigError {
  return new ConfigError(`annotation ${annotation}`, value, problem, allowed, `on ${subject}`);
}

/** The annotations that decide capture, in PodOptions's terms. */
export type CaptureOptions = Pick<
  PodOptions,
  | 'mode' | 'includeOutboundIPRanges' | 'excludeOutboundIPRanges' | 'includeInboundPorts' | 'excludeInboundPorts'
  | 'includeOutboundPorts' | 'excludeOutboundPorts' | 'rerouteInterfaces' | 'excludeInterfaces' | 'statusPort'
  | 'agentLogLevel' | 'proxyMetadata' | 'proxyConfig'
>;

/**
 * Only the annotations that decide capture, validated: what the CNI plugin and
 * the node audit read (capture-args.ts). A pod another injector wrote may carry
 * other annotations meshcap reads more strictly; they must not fail its capture.
 */
export function readCaptureOptions(annotations: Readonly<Record<string, string>>, settings: InjectSettings, subject: Subject): CaptureOptions {
  const get = (name: string): string | undefined => annotations[name];
  const check = <T>(name: string, value: string, result: Parsed<T>): T => {
    if (result.ok) return result.value;
    throw invalid(name, value, result.problem.problem, result.problem.allowed, subject);
  };
  /** The annotation if present (even empty: Istio honours "" literally), else the install default. */
  const pick = (name: string, fallback: string): string => get(name) ?? fallback;

  const proxyConfig = parseProxyConfig(get(Annotation.proxyConfig), subject);

  const modeText = get(Annotation.interceptionMode) ?? stringField(proxyConfig, 'interceptionMode') ?? settings.interceptionMode;
  if (modeText !== 'REDIRECT' && modeText !== 'TPROXY' && modeText !== 'NONE') {
    const source = get(Annotation.interceptionMode) !== undefined ? Annotation.interceptionMode : `${Annotation.proxyConfig} interceptionMode`;
    throw invalid(source, modeText, 'is not an interception mode', 'use REDIRECT, TPROXY or NONE (case-sensitive)', subject);
  }

  const includeOutboundIPRanges = pick(Annotation.includeOutboundIPRanges, settings.includeIPRanges);
  check(Annotation.includeOutboundIPRanges, includeOutboundIPRanges, parseCidrList(includeOutboundIPRanges, true));
  const excludeOutboundIPRanges = pick(Annotation.excludeOutboundIPRanges, settings.excludeIPRanges);
  check(Annotation.excludeOutboundIPRanges, excludeOutboundIPRanges, parseCidrList(excludeOutboundIPRanges, false));
  const includeInboundPorts = pick(Annotation.includeInboundPorts, settings.includeInboundPorts);
  check(Annotation.includeInboundPorts, includeInboundPorts, parsePortListOrAll(includeInboundPorts));
  const excludeInboundPorts = pick(Annotation.excludeInboundPorts, settings.excludeInboundPorts);
  check(Annotation.excludeInboundPorts, excludeInboundPorts, parsePortList(excludeInboundPorts));

  const optionalPorts = (name: string, fallback: string): string | undefined => {
    const value = get(name) ?? (fallback !== '' ? fallback : undefined);
    if (value !== undefined) check(name, value, parsePortList(value));
    return value;
  };
  const includeOutboundPorts = optionalPorts(Annotation.includeOutboundPorts, settings.includeOutboundPorts);
  const excludeOutboundPorts = optionalPorts(Annotation.excludeOutboundPorts, settings.excludeOutboundPorts);

  const interfaces = (name: string): string | undefined => {
    const value = get(name);
    if (value !== undefined) check(name, value, parseInterfaceList(value));
    return value;
  };
  // Both are validated even though the first one wins: a typo in either is a mistake worth reporting.
  const reroute = interfaces(Annotation.rerouteVirtualInterfaces);
  const kubevirt = interfaces(Annotation.kubevirtInterfaces);
  const excludeInterfaces = interfaces(Annotation.excludeInterfaces);

  const statusText = get(Annotation.statusPort);
  // "0" is Istio's way to run the agent without a status server: no proxy probes, no metrics merge, no probe rewriting.
  const statusPort =
    statusText === undefined ? settings.statusPort : statusText === '0' ? 0 : check(Annotation.statusPort, statusText, parsePort(statusText));

  return {
    mode: modeText,
    includeOutboundIPRanges,
    excludeOutboundIPRanges,
    includeInboundPorts,
    excludeInboundPorts,
    includeOutboundPorts,
    excludeOutboundPorts,
    rerouteInterfaces: reroute ?? kubevirt,
    excludeInterfaces,
    statusPort,
    agentLogLevel: logLevel(get, Annotation.agentLogLevel, settings.logLevel, subject),
    proxyMetadata: readProxyMetadata(proxyConfig, subject),
    proxyConfig,
  };
}

function logLevel(get: (name: string) => string | undefined, name: string, fallback: string, subject: Subject): string {
  const value = get(name) ?? fallback;
  if (!/^[A-Za-z0-9:,_.-]*$/.test(value)) {
    throw invalid(name, value, 'has characters a log level never has', 'use scope:level pairs such as default:info or misc:error', subject);
  }
  return value;
}

export function readPodOptions(annotations: Readonly<Record<string, string>>, settings: InjectSettings, subject: Subject): PodOptions {
  const get = (name: string): string | undefined => annotations[name];
  const capture = readCaptureOptions(annotations, settings, subject);
  const { proxyConfig } = capture;
  const template = readTemplateName(get(Annotation.templates), subject);

  const uint = (name: string, fallback: number): number => {
    const text = get(name);
    if (text === undefined) return fallback;
    if (!/^[0-9]{1,10}$/.test(text) || Number(text) > 0xffffffff) {
      throw invalid(name, text, 'is not a whole number', 'use a number of seconds or attempts from 0 to 4294967295', subject);
    }
    return Number(text);
  };
  const readiness = {
    initialDelaySeconds: uint(Annotation.readinessInitialDelay, settings.readiness.initialDelaySeconds),
    periodSeconds: uint(Annotation.readinessPeriod, settings.readiness.periodSeconds),
    failureThreshold: uint(Annotation.readinessFailureThreshold, settings.readiness.failureThreshold),
  };

  const native = boolAnnotation(Annotation.nativeSidecar, get(Annotation.nativeSidecar), settings.nativeSidecars, subject);
  // Istio ignores a value it cannot parse; here it is a mistake worth rejecting, like the other switches.
  const rewriteAppProbes = boolAnnotation(Annotation.rewriteAppHTTPProbers, get(Annotation.rewriteAppHTTPProbers), settings.rewriteAppProbes, subject);
  const holdConfig = proxyConfig.holdApplicationUntilProxyStarts;
  if (holdConfig !== undefined && typeof holdConfig !== 'boolean') {
    throw invalid(`${Annotation.proxyConfig} holdApplicationUntilProxyStarts`, String(holdConfig), 'is not a boolean', 'use true or false', subject);
  }
  const hold = typeof holdConfig === 'boolean' ? holdConfig : settings.holdApplicationUntilProxyStarts;

  const resources = readResources(get, subject);

  const proxyImage = get(Annotation.proxyImage);
  if (proxyImage !== undefined && (proxyImage === '' || /[\s\u0000-\u001f]/.test(proxyImage))) {
    throw invalid(Annotation.proxyImage, proxyImage, 'is not an image reference', 'use registry/repository:tag', subject);
  }

  return {
    ...capture,
    template,
    readiness,
    native,
    hold,
    rewriteAppProbes,
    proxyLogLevel: logLevel(get, Annotation.proxyLogLevel, 'warning', subject),
    componentLogLevel: logLevel(get, Annotation.componentLogLevel, 'misc:error', subject),
    resources,
    // Istio only honours an image annotation that names a repository (contains '/').
    proxyImage: proxyImage !== undefined && proxyImage.includes('/') ? proxyImage : undefined,
    userVolumes: readNamedMap(Annotation.userVolume, get(Annotation.userVolume), subject, volumeSourceProblem, 'a JSON object of volume name to volume source, e.g. {"certs":{"secret":{"secretName":"my-certs"}}}'),
    userVolumeMounts: readNamedMap(Annotation.userVolumeMount, get(Annotation.userVolumeMount), subject, mountProblem, 'a JSON object of volume name to mount, e.g. {"certs":{"mountPath":"/etc/certs","readOnly":true}}'),
  };
}

/**
 * Istio renders each listed template in turn; meshcap implements `sidecar` and
 * `gateway` as Istio's chart defines them. Anything else (grpc-agent, a
 * custom template, a list) would come out as a pod that is not what was asked
 * for, or broken: it is refused, naming the template.
 */
function readTemplateName(text: string | undefined, subject: Subject): TemplateName {
  if (text === undefined) return 'sidecar';
  const names = text.split(',').map((name) => name.trim());
  if (names.length === 1 && (names[0] === 'sidecar' || names[0] === 'gateway')) return names[0];
  const unknown = names.filter((name) => name !== 'sidecar' && name !== 'gateway');
  const problem =
    names.length === 1
      ? 'is not a template meshcap implements'
      : unknown.length > 0
        ? `names ${unknown.map((name) => JSON.stringify(name)).join(', ')}, not a template meshcap implements`
        : 'combines templates, which meshcap does not do';
  throw invalid(Annotation.templates, text, problem, "use sidecar or gateway (or inject this pod with Istio's injector)", subject);
}

/** A Kubernetes volume name: a DNS-1123 label. */
const VOLUME_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

function volumeSourceProblem(value: JsonObject): string | undefined {
  if (Object.keys(value).length !== 1) return 'needs exactly one volume source (secret, configMap, emptyDir, ...)';
  return undefined;
}

function mountProblem(value: JsonObject): string | undefined {
  if (typeof value.mountPath !== 'string' || !value.mountPath.startsWith('/')) return 'needs an absolute mountPath';
  return undefined;
}

/**
 * Istio's userVolume / userVolumeMount: a JSON map whose keys are volume names,
 * rendered as list items `{name: key, ...value}` in key order (Go templates
 * range over maps sorted). Anything the API server would refuse is refused here.
 */
function readNamedMap(
  annotation: string,
  text: string | undefined,
  subject: Subject,
  problemOf: (value: JsonObject) => string | undefined,
  allowed: string,
): JsonObject[] {
  if (text === undefined) return [];
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw invalid(annotation, text, 'is not JSON', `use ${allowed}`, subject);
  }
  if (!isObject(value)) throw invalid(annotation, text, 'is not a JSON object', `use ${allowed}`, subject);
  return Object.keys(value)
    .sort()
    .map((name) => {
      const item = value[name];
      if (!VOLUME_NAME.test(name)) throw invalid(annotation, text, `${JSON.stringify(name)} is not a volume name (lower-case DNS label)`, `use ${allowed}`, subject);
      if (!isObject(item)) throw invalid(annotation, text, `the entry ${JSON.stringify(name)} is not an object`, `use ${allowed}`, subject);
      const problem = problemOf(item);
      if (problem) throw invalid(annotation, text, `the entry ${JSON.stringify(name)} ${problem}`, `use ${allowed}`, subject);
      return { name, ...item };
    });
}

export function boolAnnotation(name: string, text: string | undefined, fallback: boolean, subject: Subject): boolean {
  if (text === undefined) return fallback;
  const value = parseGoBool(text);
  if (value === undefined) throw invalid(name, text, 'is not a boolean', 'use "true" or "false"', subject);
  return value;
}

function stringField(object: JsonObject, key: string): string | undefined {
  const value = object[key];
  return typeof value === 'string' ? value : undefined;
}

function parseProxyConfig(text: string | undefined, subject: Subject): JsonObject {
  if (text === undefined || text.trim() === '') return {};
  let value: unknown;
  // The parser's own duplicate-key check compares each key with every earlier one: quadratic in a long
  // flow map, which a webhook must not run on client input. Keys are checked below, linearly.
  const doc = YAML.parseDocument(text, { uniqueKeys: false });
  const error = doc.errors[0];
  if (error) {
    throw invalid(Annotation.proxyConfig, text, `does not parse: ${error.message.split('\n')[0]}`, 'give a ProxyConfig as YAML or JSON', subject);
  }
  let aliased = false;
  let duplicate: string | undefined;
  YAML.visit(doc, {
    Alias: () => {
      aliased = true;
      return YAML.visit.BREAK;
    },
    Map: (_key, map) => {
      const seen = new Set<string>();
      for (const pair of map.items) {
        const key = YAML.isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        if (seen.has(key)) {
          duplicate = key;
          return YAML.visit.BREAK;
        }
        seen.add(key);
      }
      return undefined;
    },
  });
  // Aliases can build cyclic or exponentially large values from a short annotation; a ProxyConfig never needs them.
  if (aliased) throw invalid(Annotation.proxyConfig, text, 'uses YAML aliases (*name)', 'write the ProxyConfig out without anchors and aliases', subject);
  if (duplicate !== undefined) {
    throw invalid(Annotation.proxyConfig, text, `has the key ${JSON.stringify(duplicate)} twice`, 'give each ProxyConfig field once', subject);
  }
  try {
    value = doc.toJS();
  } catch (caught) {
    throw invalid(Annotation.proxyConfig, text, `does not parse: ${(caught as Error).message.split('\n')[0]}`, 'give a ProxyConfig as YAML or JSON', subject);
  }
  if (value === null || value === undefined) return {};
  if (!isObject(value)) throw invalid(Annotation.proxyConfig, text, 'is not a mapping', 'give a ProxyConfig as YAML or JSON', subject);
  return value;
}

function readProxyMetadata(config: JsonObject, subject: Subject): [string, string][] {
  const metadata = config.proxyMetadata;
  if (metadata === undefined || metadata === null) return [];
  if (!isObject(metadata)) {
    throw invalid(`${Annotation.proxyConfig} proxyMetadata`, JSON.stringify(metadata), 'is not a mapping', 'give NAME: value pairs', subject);
  }
  return Object.entries(metadata).map(([name, value]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(name)) {
      throw invalid(`${Annotation.proxyConfig} proxyMetadata`, name, 'is not a valid environment variable name', 'use letters, digits and _', subject);
    }
    return [name, typeof value === 'string' ? value : JSON.stringify(value)];
  });
}

const QUANTITY = /^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?[0-9]+)?$/;

function readResources(get: (name: string) => string | undefined, subject: Subject): JsonObject | undefined {
  const entries: [string, 'requests' | 'limits', 'cpu' | 'memory'][] = [
    [Annotation.proxyCPU, 'requests', 'cpu'],
    [Annotation.proxyMemory, 'requests', 'memory'],
    [Annotation.proxyCPULimit, 'limits', 'cpu'],
    [Annotation.proxyMemoryLimit, 'limits', 'memory'],
  ];
  if (entries.every(([name]) => get(name) === undefined)) return undefined;
  const requests: JsonObject = {};
  const limits: JsonObject = {};
  for (const [name, group, resource] of entries) {
    const value = get(name);
    if (value === undefined) continue;
    if (!QUANTITY.test(value)) {
      throw invalid(name, value, 'is not a resource quantity', 'use a Kubernetes quantity such as 100m, 2, 128Mi or 1Gi', subject);
    }
    (group === 'requests' ? requests : limits)[resource] = value;
  }
  const resources: JsonObject = {};
  if (Object.keys(limits).length > 0) resources.limits = limits;
  if (Object.keys(requests).length > 0) resources.requests = requests;
  return resources;
}
