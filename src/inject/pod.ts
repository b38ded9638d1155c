/**
 * The injection engine for one pod (a Pod, or the pod template of a workload):
 * decide, strip a previous injection, build istio-init and istio-proxy, lay
 * them out for the chosen startup ordering, and express the result as a JSON
 * Patch against the pod as given. Shared by `meshcap inject` and the webhook.
 * Pure: JSON in, JSON and patch out; invalid annotations throw ConfigError.
 */
import { createHash } from 'node:crypto';
import { parseGoBool } from '../config/argv.js';
import { ConfigError, type Env, parseCaptureConfig } from '../config/parse.js';
import type { HostFacts } from '../config/types.js';
import { A, type PodOptions, readPodOptions } from './annotations.js';
import { captureArgs } from './capture-args.js';
import { type Json, type JsonObject, asArray, asObject, clone, deepFreeze, isObject, stringMap } from './json.js';
import { mergeByKey, strategicMerge } from './merge.js';
import { type PatchOp, diffList, diffMap } from './patch.js';
import { PROBERS_ENV, rewriteAppProbes } from './probes.js';
import { type InjectSettings, type ProxyTemplate, initImage, proxyImage } from './settings.js';
import { defaultTemplate } from './template.js';

export const INIT_NAME = 'istio-init';
export const PROXY_NAME = 'istio-proxy';

export interface Workload {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly namespace: string;
}

export interface PodTarget {
  /** Pod (template) metadata and spec, exactly as received ({} when absent). */
  readonly metadata: JsonObject;
  /** False when the object has no metadata key at all (the patch must then create it). */
  readonly hasMetadata: boolean;
  readonly spec: JsonObject;
  /** The object that owns the pod, for ISTIO_META_WORKLOAD_NAME / ISTIO_META_OWNER. */
  readonly workload: Workload;
  /** `Deployment "default/hello"`, for messages. */
  readonly subject: string;
}

export type InjectOutcome =
  | { readonly kind: 'skipped'; readonly reason: string }
  | { readonly kind: 'injected'; readonly metadata: JsonObject; readonly spec: JsonObject; readonly ops: readonly PatchOp[] };

/** What a previous injection recorded (Istio's sidecar.istio.io/status format). */
export interface InjectionStatus {
  readonly initContainers: readonly string[];
  readonly containers: readonly string[];
  readonly volumes: readonly string[];
}

export function injectPod(target: PodTarget, settings: InjectSettings): InjectOutcome {
  const { metadata, spec, subject } = target;
  const labels = stringMap(metadata.labels);
  const annotations = stringMap(metadata.annotations);

  if (spec.hostNetwork === true) {
    return { kind: 'skipped', reason: `Skipping injection because ${subject} has host networking enabled` };
  }
  // The label wins over the annotation, as in Istio; only an explicit false opts out here.
  const injectText = labels[A.inject] ?? annotations[A.inject];
  if (injectText !== undefined && parseGoBool(injectText) === false) {
    return { kind: 'skipped', reason: `Skipping injection because ${subject} has sidecar injection disabled` };
  }

  const stripped = stripPrevious(metadata, spec, subject);
  const options = readPodOptions(stringMap(stripped.annotations), settings, subject);
  const overrides = stripped.overrides;
  const userProxy = overrides.find((c) => c.name === PROXY_NAME);
  const userInit = overrides.find((c) => c.name === INIT_NAME);

  // Kubelet's probes would be captured by the sidecar: they go through the agent instead (probes.ts).
  const probes = rewriteAppProbes(stripped, stripped.probers, options, subject);
  const appContainers = probes.containers;
  const template = settings.template ?? defaultTemplate(settings);

  let proxy = buildProxy(options, settings, template, target, appContainers, stripped.prometheus, probes.probers);
  if (userProxy) proxy = applyOverride(proxy, userProxy);

  let init: JsonObject | undefined;
  if (options.mode !== 'NONE') {
    init = buildInit(options, settings, userProxy, subject);
    if (userInit) init = applyOverride(init, userInit);
  }

  const initContainers: Json[] = [];
  let containers: Json[];
  const injectedInit: string[] = [];
  const injectedContainers: string[] = [];
  if (options.native) {
    if (init) injectedInit.push(INIT_NAME);
    injectedInit.push(PROXY_NAME);
    initContainers.push(...(init ? [init] : []), proxy, ...probes.initContainers);
    containers = [...appContainers];
  } else {
    // Legacy: user init containers run before any rule exists (they keep plain networking), then capture.
    initContainers.push(...probes.initContainers, ...(init ? [init] : []));
    if (init) injectedInit.push(INIT_NAME);
    injectedContainers.push(PROXY_NAME);
    // With hold, kubelet starts the proxy first and blocks on its postStart hook until it is ready.
    containers = options.hold ? [proxy, ...appContainers] : [...appContainers, proxy];
  }
  checkVolumes(options, template, stripped.volumes, subject);
  const injectedVolumes = [...template.volumes, ...options.userVolumes];
  const volumeNames = injectedVolumes.map((v) => String(v.name));
  // Injected volumes first, as Istio's strategic merge leaves them. Template volumes are frozen and shared.
  const volumes: Json[] = [...injectedVolumes, ...stripped.volumes];

  const newLabels: JsonObject = { ...(asObject(stripped.labels) ?? {}) };
  const appLabels = stringMap(newLabels);
  newLabels['security.istio.io/tlsMode'] ??= 'istio';
  newLabels['service.istio.io/canonical-name'] ??= canonicalName(appLabels, target.workload.name);
  newLabels['service.istio.io/canonical-revision'] ??=
    appLabels['app.kubernetes.io/version'] ?? appLabels.version ?? 'latest';

  const newAnnotations: JsonObject = { ...(asObject(stripped.annotations) ?? {}) };
  newAnnotations[A.rev] ??= settings.revision;
  const firstApp = appContainers.find((c) => typeof c.name === 'string');
  if (firstApp) {
    newAnnotations[A.defaultContainer] ??= firstApp.name!;
    newAnnotations[A.defaultLogsContainer] ??= firstApp.name!;
  }
  if (mergesMetrics(stringMap(newAnnotations), options)) {
    newAnnotations[A.promPath] = '/stats/prometheus';
    newAnnotations[A.promPort] = String(options.statusPort);
    newAnnotations[A.promScrape] = 'true';
  }
  if (overrides.length > 0) newAnnotations[A.overrides] = stripped.overridesText;
  newAnnotations[A.status] = statusText({ initContainers: injectedInit, containers: injectedContainers, volumes: volumeNames }, settings);

  const newMetadata: JsonObject = { ...metadata, labels: newLabels, annotations: newAnnotations };
  // A pod template may have no metadata at all (CronJob templates often don't): add it whole.
  const metadataOps: PatchOp[] = target.hasMetadata
    ? [
        ...diffMap(['metadata', 'labels'], asObject(metadata.labels), newLabels),
        ...diffMap(['metadata', 'annotations'], asObject(metadata.annotations), newAnnotations),
      ]
    : [{ op: 'add', path: '/metadata', value: { labels: newLabels, annotations: newAnnotations } }];
  const newSpec: JsonObject = { ...spec, containers };
  setList(newSpec, 'initContainers', initContainers);
  setList(newSpec, 'volumes', volumes);

  const ops: PatchOp[] = [
    ...metadataOps,
    ...diffList(['spec', 'initContainers'], asArray(spec.initContainers), asArray(newSpec.initContainers)),
    ...diffList(['spec', 'containers'], asArray(spec.containers), containers),
    ...diffList(['spec', 'volumes'], asArray(spec.volumes), asArray(newSpec.volumes)),
  ];
  return { kind: 'injected', metadata: newMetadata, spec: newSpec, ops };
}

/**
 * What the API server would refuse about the volumes, refused here by name.
 * The pod's own volumes (those a previous injection did not record in the
 * status annotation) must not take a template volume's name: the duplicate
 * would be refused with a generic error, and a re-injection would strip the
 * user's volume as if it were the injected one. User volumes must be new
 * names, and user mounts must mount a volume the pod will have.
 */
function checkVolumes(options: PodOptions, template: ProxyTemplate, podVolumes: readonly Json[], subject: string): void {
  const templateNames = new Set(template.volumes.map((v) => v.name));
  const podNames = new Set(podVolumes.map((v) => (isObject(v) ? v.name : undefined)));
  for (const name of podNames) {
    if (typeof name === 'string' && templateNames.has(name)) {
      throw new ConfigError('pod volume', name, 'has the name of a volume the injected proxy needs', 'rename the volume in spec.volumes (and its volumeMounts)', `on ${subject}`);
    }
  }
  for (const volume of options.userVolumes) {
    if (podNames.has(volume.name) || templateNames.has(volume.name)) {
      throw new ConfigError(`annotation ${A.userVolume}`, String(volume.name), 'names a volume the pod or the proxy template already has', 'pick another volume name', `on ${subject}`);
    }
  }
  const known = new Set([...podNames, ...templateNames, ...options.userVolumes.map((v) => v.name)]);
  for (const mount of options.userVolumeMounts) {
    if (!known.has(mount.name)) {
      throw new ConfigError(`annotation ${A.userVolumeMount}`, String(mount.name), 'mounts a volume the pod does not have', `declare it in ${A.userVolume} or in the pod's volumes`, `on ${subject}`);
    }
  }
}

function setList(spec: JsonObject, key: string, items: Json[]): void {
  if (items.length > 0) spec[key] = items;
  else delete spec[key];
}

export function statusText(status: InjectionStatus, settings: InjectSettings): string {
  const orNull = (names: readonly string[]) => (names.length > 0 ? [...names] : null);
  return JSON.stringify({
    initContainers: orNull(status.initContainers),
    containers: orNull(status.containers),
    volumes: orNull(status.volumes),
    imagePullSecrets: null,
    revision: settings.revision,
  });
}

export function parseStatus(text: string | undefined, subject: string): InjectionStatus | undefined {
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ConfigError(`annotation ${A.status}`, text, 'is not JSON', 'remove it, or restore the value the injector wrote', `on ${subject}`);
  }
  const names = (key: string): string[] => {
    const list = isObject(value) ? value[key] : undefined;
    if (list === null || list === undefined) return [];
    if (!Array.isArray(list) || !list.every((n) => typeof n === 'string')) {
      throw new ConfigError(`annotation ${A.status}`, text, `${key} is not a list of names`, 'remove it, or restore the value the injector wrote', `on ${subject}`);
    }
    return list as string[];
  };
  return { initContainers: names('initContainers'), containers: names('containers'), volumes: names('volumes') };
}

interface Stripped {
  readonly labels: Json | undefined;
  readonly annotations: JsonObject;
  readonly initContainers: JsonObject[];
  readonly containers: JsonObject[];
  readonly volumes: Json[];
  /** The user's own istio-proxy / istio-init, laid over the generated ones. */
  readonly overrides: JsonObject[];
  readonly overridesText: string;
  /** The app's own Prometheus annotations, moved into the proxy's env. */
  readonly prometheus: Record<string, string>;
  /** The previous proxy's record of the app probes it took over, to restore them. */
  readonly probers: string | undefined;
}

/**
 * The pod as the user wrote it: what a previous injection (named in the status
 * annotation) added is removed, from both container lists whatever layout it
 * used, so re-injection is idempotent and can switch layouts cleanly.
 */
function stripPrevious(metadata: JsonObject, spec: JsonObject, subject: string): Stripped {
  const annotations: JsonObject = { ...(asObject(metadata.annotations) ?? {}) };
  const texts = stringMap(annotations);
  const previous = parseStatus(texts[A.status], subject);
  const injected = new Set([...(previous?.initContainers ?? []), ...(previous?.containers ?? [])]);
  const injectedVolumes = new Set(previous?.volumes ?? []);
  const nameOf = (item: Json): string | undefined => (isObject(item) && typeof item.name === 'string' ? item.name : undefined);
  const objects = (list: Json | undefined): JsonObject[] => (asArray(list) ?? []).filter(isObject);

  const allInit = objects(spec.initContainers);
  const allContainers = objects(spec.containers);
  const oldProxy = [...allInit, ...allContainers].find((c) => injected.has(PROXY_NAME) && c.name === PROXY_NAME);

  let overrides: JsonObject[] = [];
  let overridesText = '';
  if (previous && texts[A.overrides] !== undefined) {
    overridesText = texts[A.overrides]!;
    overrides = parseOverrides(overridesText, subject);
  }
  const isOverride = (c: JsonObject) => !injected.has(nameOf(c) ?? '') && (c.name === PROXY_NAME || c.name === INIT_NAME);
  if (!previous || texts[A.overrides] === undefined) {
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
  const keep = (c: JsonObject) => !injected.has(nameOf(c) ?? '') && c.name !== PROXY_NAME && c.name !== INIT_NAME;

  let prometheus: Record<string, string> = {};
  if (previous) {
    delete annotations[A.status];
    // Restore the app's own scrape settings that the previous injection moved into the proxy.
    const saved = envValue(oldProxy, 'ISTIO_PROMETHEUS_ANNOTATIONS');
    if (texts[A.promPath] === '/stats/prometheus') {
      for (const key of [A.promScrape, A.promPort, A.promPath]) delete annotations[key];
      if (saved) {
        try {
          const parsed = JSON.parse(saved) as unknown;
          if (isObject(parsed)) {
            // meshcap saves only the annotations the app had, an empty value included; Istio saves its
            // struct {scrape, path, port} whole (in that order), "" standing for an absent annotation.
            const istioForm = Object.keys(parsed).join(',') === 'scrape,path,port';
            for (const [key, value] of Object.entries({ scrape: A.promScrape, port: A.promPort, path: A.promPath })) {
              if (typeof parsed[key] === 'string' && !(istioForm && parsed[key] === '')) annotations[value] = parsed[key];
            }
          }
        } catch {
          // An unreadable saved value is dropped: the scrape settings are re-derived below.
        }
      }
    }
  }
  const textsAfter = stringMap(annotations);
  prometheus = {};
  for (const [key, name] of [['scrape', A.promScrape], ['port', A.promPort], ['path', A.promPath]] as const) {
    if (textsAfter[name] !== undefined) prometheus[key] = textsAfter[name]!;
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

function parseOverrides(text: string, subject: string): JsonObject[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ConfigError(`annotation ${A.overrides}`, text, 'is not JSON', 'remove it, or restore the value the injector wrote', `on ${subject}`);
  }
  if (!isObject(value)) return [];
  return [...(asArray(value.initContainers) ?? []), ...(asArray(value.containers) ?? [])].filter(isObject);
}

function envValue(container: JsonObject | undefined, name: string): string | undefined {
  for (const item of asArray(container?.env) ?? []) {
    if (isObject(item) && item.name === name && typeof item.value === 'string') return item.value;
  }
  return undefined;
}

function mergesMetrics(annotations: Record<string, string>, options: PodOptions): boolean {
  return options.statusPort !== 0 && annotations[A.promScrape] !== 'false' && annotations[A.mergeMetrics] !== 'false';
}

function canonicalName(labels: Record<string, string>, workloadName: string): string {
  const name = labels['app.kubernetes.io/name'] ?? labels.app ?? workloadName;
  return name.slice(0, 63).replace(/^[-_.]+|[-_.]+$/g, '');
}

/** Host facts for validating derived istio-init args: none are needed because IPv6 and DNS are not decided here. */
const NO_FACTS: HostFacts = { interfaceAddresses: () => [], resolvConf: () => '', lookupUid: () => undefined };

/**
 * Verdicts of the capture parser on derived args and env; most pods share a
 * handful. Keyed by a SHA-256 digest: an args list can be megabytes (a long
 * excludeOutboundIPRanges annotation), and 1024 such keys must not be retained.
 */
const verdicts = new Map<string, InitProblem | undefined>();

/**
 * Why istio-init would refuse to start; `fromEnv` when only the proxyMetadata
 * env is at fault. The error's texts, not the error: its `value` can be the
 * whole (megabytes long) argument, and verdicts are kept.
 */
interface InitProblem {
  readonly message: string;
  readonly subject: string;
  readonly problem: string;
  readonly allowed: string;
  readonly source: string;
  readonly fromEnv: boolean;
}

/** The very parser istio-init will run, on its args and env: what it would refuse at pod start is refused now. */
function initProblem(args: readonly string[], env: readonly (readonly [string, string])[]): InitProblem | undefined {
  const key = createHash('sha256').update(JSON.stringify([args, env])).digest('base64');
  if (verdicts.has(key)) return verdicts.get(key);
  let problem = parseProblem(args, {}, false);
  if (problem === undefined && env.length > 0) problem = parseProblem(args, Object.fromEntries(env), true);
  if (verdicts.size >= 1024) verdicts.clear();
  verdicts.set(key, problem);
  return problem;
}

function parseProblem(args: readonly string[], env: Env, fromEnv: boolean): InitProblem | undefined {
  try {
    parseCaptureConfig(args, env, NO_FACTS);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    const { message, subject, problem, allowed, source } = error;
    return { message, subject, problem, allowed, source, fromEnv };
  }
  return undefined;
}

/** What capture needs and nothing more: NET_ADMIN and NET_RAW as root, every other capability dropped. */
const INIT_SECURITY_CONTEXT: JsonObject = deepFreeze({
  allowPrivilegeEscalation: false,
  capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] },
  privileged: false,
  readOnlyRootFilesystem: false,
  runAsGroup: 0,
  runAsNonRoot: false,
  runAsUser: 0,
});

function buildInit(options: PodOptions, settings: InjectSettings, userProxy: JsonObject | undefined, subject: string): JsonObject {
  const userUid = asObject(userProxy?.securityContext)?.runAsUser;
  const args = captureArgs(options, settings, typeof userUid === 'number' ? userUid : undefined);
  const problem = initProblem(args.slice(1), options.proxyMetadata);
  if (problem?.fromEnv) {
    // The parser names the env variable it refused (`from env X` or `env X`): that is the proxyMetadata key.
    const name = /\benv ([A-Za-z_][A-Za-z0-9_.-]*)/.exec(`${problem.source} ${problem.subject}`)?.[1];
    const entry = options.proxyMetadata.find(([key]) => key === name);
    throw new ConfigError(
      `annotation ${A.proxyConfig} proxyMetadata`,
      entry ? `${entry[0]}: ${entry[1]}` : options.proxyMetadata.map(([key, value]) => `${key}: ${value}`).join(', '),
      `${problem.problem} (istio-init reads it for ${problem.subject})`,
      problem.allowed,
      `on ${subject}`,
    );
  }
  if (problem !== undefined) {
    throw new ConfigError('istio-init arguments derived from the annotations', args.slice(1).join(' '), problem.message, 'fix the traffic annotations', `on ${subject}`);
  }
  const init: JsonObject = { name: INIT_NAME, image: initImage(settings) };
  if (settings.initStyle === 'meshcap') init.command = ['meshcap'];
  init.args = args;
  if (options.proxyMetadata.length > 0) init.env = options.proxyMetadata.map(([name, value]) => ({ name, value }));
  init.resources = clone(options.resources ?? settings.resources);
  init.securityContext = INIT_SECURITY_CONTEXT;
  return init;
}

function buildProxy(
  options: PodOptions,
  settings: InjectSettings,
  template: ProxyTemplate,
  target: PodTarget,
  apps: readonly JsonObject[],
  prometheus: Record<string, string>,
  probers: string | undefined,
): JsonObject {
  const isDefault = settings.template === undefined;
  // A shallow copy is enough: the template is frozen, and every field changed below is replaced, not edited.
  const proxy: JsonObject = { ...template.container };
  proxy.name = PROXY_NAME;
  if (options.proxyImage) proxy.image = options.proxyImage;
  else if (proxy.image === undefined || proxy.image === 'auto') proxy.image = proxyImage(settings);
  if (isDefault) {
    proxy.args = [
      ...(asArray(proxy.args) ?? []),
      `--proxyLogLevel=${options.proxyLogLevel}`,
      `--proxyComponentLogLevel=${options.componentLogLevel}`,
      `--log_output_level=${options.agentLogLevel}`,
    ];
  }

  const { workload } = target;
  const ports = apps.flatMap((c) => (asArray(c.ports) ?? []).filter(isObject));
  const proxyConfig: JsonObject = { ...options.proxyConfig };
  delete proxyConfig.proxyMetadata;
  const env: Json[] = [
    { name: 'PROXY_CONFIG', value: `${JSON.stringify(proxyConfig)}\n` },
    { name: 'ISTIO_META_POD_PORTS', value: JSON.stringify(ports) },
    { name: 'ISTIO_META_APP_CONTAINERS', value: apps.map((c) => String(c.name)).join(',') },
    { name: 'ISTIO_META_INTERCEPTION_MODE', value: options.mode },
    { name: 'ISTIO_META_WORKLOAD_NAME', value: workload.name },
    {
      name: 'ISTIO_META_OWNER',
      value: `kubernetes://apis/${workload.apiVersion}/namespaces/${workload.namespace}/${workload.kind.toLowerCase()}s/${workload.name}`,
    },
    ...options.proxyMetadata.map(([name, value]) => ({ name, value })),
  ];
  if (Object.keys(prometheus).length > 0 && options.statusPort !== 0) {
    env.push({ name: 'ISTIO_PROMETHEUS_ANNOTATIONS', value: JSON.stringify(prometheus) });
  }
  if (probers !== undefined) env.push({ name: PROBERS_ENV, value: probers });
  proxy.env = mergeByKey(asArray(proxy.env) ?? [], env, 'name');

  if (options.statusPort !== 0) {
    const ready = { path: '/healthz/ready', port: 15021 };
    proxy.startupProbe ??= { failureThreshold: settings.startupFailureThreshold, httpGet: ready, periodSeconds: 1, timeoutSeconds: 3 };
    const readiness: JsonObject = { failureThreshold: options.readiness.failureThreshold, httpGet: ready };
    if (options.readiness.initialDelaySeconds > 0) readiness.initialDelaySeconds = options.readiness.initialDelaySeconds;
    readiness.periodSeconds = options.readiness.periodSeconds;
    readiness.timeoutSeconds = 3;
    proxy.readinessProbe ??= readiness;
  } else {
    delete proxy.startupProbe;
    delete proxy.readinessProbe;
  }
  if (options.resources || proxy.resources === undefined) proxy.resources = clone(options.resources ?? settings.resources);
  if (options.userVolumeMounts.length > 0) proxy.volumeMounts = [...(asArray(proxy.volumeMounts) ?? []), ...options.userVolumeMounts];

  if (options.mode === 'TPROXY') {
    proxy.securityContext = strategicMerge(asObject(proxy.securityContext) ?? {}, {
      capabilities: { add: ['NET_ADMIN'], drop: ['ALL'] },
      runAsGroup: settings.proxyGid,
      runAsNonRoot: false,
      runAsUser: 0,
    });
  }

  if (options.native) {
    proxy.restartPolicy = 'Always';
    proxy.lifecycle ??= {
      preStop: { exec: { command: ['pilot-agent', 'request', `--debug-port=${options.statusPort}`, 'POST', 'drain'] } },
    };
  } else {
    delete proxy.restartPolicy;
    if (options.hold) proxy.lifecycle ??= { postStart: { exec: { command: ['pilot-agent', 'wait'] } } };
  }
  return proxy;
}

/** The user's own container laid over the generated one; `image: auto` keeps the generated image. */
function applyOverride(generated: JsonObject, user: JsonObject): JsonObject {
  const over: JsonObject = { ...user };
  if (over.image === 'auto') delete over.image;
  return strategicMerge(generated, over);
}
