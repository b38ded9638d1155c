/**
 * The injection engine for one pod (a Pod, or the pod template of a workload):
 * decide, strip a previous injection (strip.ts), build istio-init or, in the
 * CNI layout, istio-validation (init-container.ts) and istio-proxy
 * (proxy-container.ts) for the pod's template (sidecar or gateway), lay them
 * out for the chosen startup ordering, and express the result as a JSON Patch
 * against the pod as given. Shared by `meshcap inject` and the webhook.
 * Pure: JSON in, JSON and patch out; invalid annotations throw ConfigError.
 */
import { parseGoBool } from '../config/argv.js';
import { ConfigError } from '../config/parse.js';
import { Annotation, type PodOptions, readPodOptions } from './annotations.js';
import { captureAnnotations } from './capture-args.js';
import { buildInit } from './init-container.js';
import { type Json, type JsonObject, asArray, asObject, isObject, stringMap } from './json.js';
import { type PatchOp, diffList, diffMap } from './patch.js';
import { NETWORKS_ANNOTATION, withNetworkAttachment } from './multus.js';
import { rewriteAppProbes } from './probes.js';
import { clearScrapeAnnotations, mergesMetrics } from './prometheus.js';
import { applyOverride, buildProxy, tproxyFixups } from './proxy-container.js';
import type { InjectSettings, ProxyTemplate } from './settings.js';
import { statusText } from './status-annotation.js';
import { stripPrevious } from './strip.js';
import { INIT_NAME, PROXY_NAME, type PodTarget, VALIDATION_NAME } from './target.js';
import { defaultTemplate, gatewayTemplate } from './template.js';

export { INIT_NAME, PROXY_NAME, type PodTarget, type Workload } from './target.js';
export { type InjectionStatus, parseStatus, statusText } from './status-annotation.js';

export type InjectOutcome =
  | { readonly kind: 'skipped'; readonly reason: string }
  | { readonly kind: 'injected'; readonly metadata: JsonObject; readonly spec: JsonObject; readonly ops: readonly PatchOp[] };

export function injectPod(target: PodTarget, settings: InjectSettings): InjectOutcome {
  const { metadata, spec, subject } = target;
  const labels = stringMap(metadata.labels);
  const annotations = stringMap(metadata.annotations);

  if (spec.hostNetwork === true) {
    return { kind: 'skipped', reason: `Skipping injection because ${subject} has host networking enabled` };
  }
  // The label wins over the annotation, as in Istio; only an explicit false opts out here.
  const injectText = labels[Annotation.inject] ?? annotations[Annotation.inject];
  if (injectText !== undefined && parseGoBool(injectText) === false) {
    return { kind: 'skipped', reason: `Skipping injection because ${subject} has sidecar injection disabled` };
  }

  const stripped = stripPrevious(metadata, spec, subject);
  const read = readPodOptions(stringMap(stripped.annotations), settings, subject);
  // Istio's gateway template: the proxy is the pod's main container, with no capture, no sidecar ordering
  // and none of the sidecar template's per-pod volumes.
  const gateway = read.template === 'gateway';
  const options: PodOptions = gateway ? { ...read, native: false, hold: false, userVolumes: [], userVolumeMounts: [] } : read;
  const overrides = stripped.overrides;
  const userProxy = overrides.find((c) => c.name === PROXY_NAME);
  const userInit = overrides.find((c) => c.name === (settings.cni ? VALIDATION_NAME : INIT_NAME));
  // The other layout's init container cannot be honoured; dropping the user's fields silently would change capture.
  const foreign = overrides.find((c) => c.name === (settings.cni ? INIT_NAME : VALIDATION_NAME));
  if (foreign && !gateway) {
    throw new ConfigError(
      `container ${String(foreign.name)}`,
      'declared in the pod (or in its proxy.istio.io/overrides)',
      settings.cni ? 'has no place in the CNI layout, where the node\'s CNI plugin captures' : 'exists only in the CNI layout (--cni)',
      settings.cni ? `remove it, or set its fields on ${VALIDATION_NAME}` : 'remove it, or inject with --cni',
      `on ${subject}`,
    );
  }

  // Kubelet's probes would be captured by the sidecar: they go through the agent instead (probes.ts).
  const probes = rewriteAppProbes(stripped, stripped.probers, options, subject);
  const appContainers = probes.containers;
  const template = gateway ? gatewayTemplate(settings) : (settings.template ?? defaultTemplate(settings));

  // The app's scrape settings go to the agent only when it takes over scraping (Istio: applyPrometheusMerge).
  const merged = mergesMetrics(stringMap(stripped.annotations), options, subject);
  let proxy = buildProxy(options, settings, template, target, appContainers, userProxy, merged ? stripped.prometheus : {}, probes.probers);
  if (userProxy) proxy = tproxyFixups(applyOverride(proxy, userProxy), options);

  let init: JsonObject | undefined;
  if (options.mode !== 'NONE' && !gateway) {
    init = buildInit(options, settings, userProxy, subject);
    if (userInit) init = applyOverride(init, userInit);
  }

  const layout = layOut(gateway ? 'gateway' : options.native ? 'native' : 'legacy', { cni: settings.cni, hold: options.hold }, init, proxy, probes, asArray(spec.containers));
  const { initContainers, containers } = layout;
  checkVolumes(options, template, stripped.volumes, subject);
  const injectedVolumes = [...template.volumes, ...options.userVolumes];
  const volumeNames = injectedVolumes.map((v) => String(v.name));
  // Injected volumes first, as Istio's strategic merge leaves them. Template volumes are frozen and shared.
  const volumes: Json[] = [...injectedVolumes, ...stripped.volumes];

  const newLabels: JsonObject = { ...(asObject(stripped.labels) ?? {}) };
  const appLabels = stringMap(newLabels);
  if (!gateway) newLabels['security.istio.io/tlsMode'] ??= 'istio';
  newLabels['service.istio.io/canonical-name'] ??= canonicalName(appLabels, target.workload.name);
  newLabels['service.istio.io/canonical-revision'] ??=
    appLabels['app.kubernetes.io/version'] ?? appLabels.version ?? 'latest';
  if (settings.mesh.network !== '') newLabels['topology.istio.io/network'] = settings.mesh.network;

  const newAnnotations: JsonObject = { ...(asObject(stripped.annotations) ?? {}) };
  newAnnotations[Annotation.rev] ??= settings.revision;
  const firstApp = appContainers.find((c) => typeof c.name === 'string');
  if (firstApp) {
    newAnnotations[Annotation.defaultContainer] ??= firstApp.name!;
    newAnnotations[Annotation.defaultLogsContainer] ??= firstApp.name!;
  }
  if (merged) {
    clearScrapeAnnotations(newAnnotations);
    newAnnotations[Annotation.promPath] = '/stats/prometheus';
    newAnnotations[Annotation.promPort] = String(options.statusPort);
    newAnnotations[Annotation.promScrape] = 'true';
  }
  if (overrides.length > 0) newAnnotations[Annotation.overrides] = stripped.overridesText;
  if (settings.cni && !gateway) {
    // The plugin cannot see container args: the capture travels in annotations (capture-args.ts).
    const userUid = asObject(userProxy?.securityContext)?.runAsUser;
    Object.assign(newAnnotations, captureAnnotations(options, typeof userUid === 'number' ? userUid : undefined));
    if (settings.cniNetworkAttachment) {
      const current = newAnnotations[NETWORKS_ANNOTATION];
      const networks = withNetworkAttachment(typeof current === 'string' ? current : undefined, settings.cniNetworkAttachment, target.workload.namespace, subject);
      if (networks !== undefined) newAnnotations[NETWORKS_ANNOTATION] = networks;
    }
  }
  newAnnotations[Annotation.status] = statusText({ initContainers: layout.injectedInit, containers: layout.injectedContainers, volumes: volumeNames }, settings);

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
  if (gateway) newSpec.securityContext = withUnprivilegedPorts(asObject(spec.securityContext));

  const ops: PatchOp[] = [
    ...metadataOps,
    ...diffList(['spec', 'initContainers'], asArray(spec.initContainers), asArray(newSpec.initContainers)),
    ...diffList(['spec', 'containers'], asArray(spec.containers), containers),
    ...diffList(['spec', 'volumes'], asArray(spec.volumes), asArray(newSpec.volumes)),
    ...diffMap(['spec', 'securityContext'], asObject(spec.securityContext), asObject(newSpec.securityContext)),
  ];
  return { kind: 'injected', metadata: newMetadata, spec: newSpec, ops };
}

interface Layout {
  readonly initContainers: Json[];
  readonly containers: Json[];
  /** Names for the status annotation. */
  readonly injectedInit: string[];
  readonly injectedContainers: string[];
}

/**
 * Where the injected containers go among the app's (Istio's reorderPod):
 * native: the capture init, then the proxy as a restartable init container,
 * then the user's init containers; legacy: the user's init containers run
 * before capture (with CNI the rules already exist, so istio-validation goes
 * first and proves them), the proxy first when it holds the app, else last;
 * gateway: the proxy where the user's istio-proxy stood (last when none).
 */
function layOut(
  kind: 'native' | 'legacy' | 'gateway',
  { cni, hold }: { readonly cni: boolean; readonly hold: boolean },
  init: JsonObject | undefined,
  proxy: JsonObject,
  app: { readonly initContainers: readonly JsonObject[]; readonly containers: readonly JsonObject[] },
  original: readonly Json[] | undefined,
): Layout {
  const inits = init ? [init] : [];
  const initNames = inits.map((c) => String(c.name));
  if (kind === 'native') {
    return { initContainers: [...inits, proxy, ...app.initContainers], containers: [...app.containers], injectedInit: [...initNames, PROXY_NAME], injectedContainers: [] };
  }
  if (kind === 'gateway') {
    const at = (original ?? []).findIndex((c) => isObject(c) && c.name === PROXY_NAME);
    const containers: Json[] = [...app.containers];
    containers.splice(at === -1 ? containers.length : Math.min(at, containers.length), 0, proxy);
    return { initContainers: [...app.initContainers], containers, injectedInit: [], injectedContainers: [PROXY_NAME] };
  }
  return {
    initContainers: cni ? [...inits, ...app.initContainers] : [...app.initContainers, ...inits],
    // With hold, kubelet starts the proxy first and blocks on its postStart hook until it is ready.
    containers: hold ? [proxy, ...app.containers] : [...app.containers, proxy],
    injectedInit: initNames,
    injectedContainers: [PROXY_NAME],
  };
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
      throw new ConfigError(`annotation ${Annotation.userVolume}`, String(volume.name), 'names a volume the pod or the proxy template already has', 'pick another volume name', `on ${subject}`);
    }
  }
  const known = new Set([...podNames, ...templateNames, ...options.userVolumes.map((v) => v.name)]);
  for (const mount of options.userVolumeMounts) {
    if (!known.has(mount.name)) {
      throw new ConfigError(`annotation ${Annotation.userVolumeMount}`, String(mount.name), 'mounts a volume the pod does not have', `declare it in ${Annotation.userVolume} or in the pod's volumes`, `on ${subject}`);
    }
  }
}

function setList(spec: JsonObject, key: string, items: Json[]): void {
  if (items.length > 0) spec[key] = items;
  else delete spec[key];
}

/**
 * A gateway listens on 80 and 443 as uid 1337: Istio's gateway template lets
 * every uid bind low ports in the pod's network namespace. The pod's own
 * sysctls are kept (Istio's overlay replaces the list); its own value of this
 * one wins.
 */
const UNPRIVILEGED_PORTS = 'net.ipv4.ip_unprivileged_port_start';

function withUnprivilegedPorts(securityContext: JsonObject | undefined): JsonObject {
  const sysctls = (asArray(securityContext?.sysctls) ?? []).filter(isObject);
  if (sysctls.some((s) => s.name === UNPRIVILEGED_PORTS)) return securityContext!;
  return { ...(securityContext ?? {}), sysctls: [...sysctls, { name: UNPRIVILEGED_PORTS, value: '0' }] };
}

function canonicalName(labels: Record<string, string>, workloadName: string): string {
  const name = labels['app.kubernetes.io/name'] ?? labels.app ?? workloadName;
  return name.slice(0, 63).replace(/^[-_.]+|[-_.]+$/g, '');
}
