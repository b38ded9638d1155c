/**
 * The istio-proxy container: the template's container completed with the
 * per-pod values (image, log levels, env Istio's agent reads, probes,
 * resources, user mounts, TPROXY privileges, native or legacy lifecycle), and
 * the user's own istio-proxy laid over it. Pure.
 */
import type { PodOptions } from './annotations.js';
import { type Json, type JsonObject, asArray, asObject, clone, isObject } from './json.js';
import { mergeByKey, strategicMerge } from './merge.js';
import { PROBERS_ENV } from './probes.js';
import { type InjectSettings, type ProxyTemplate, proxyImage } from './settings.js';
import { PROXY_NAME, type PodTarget } from './target.js';

export function buildProxy(
  options: PodOptions,
  settings: InjectSettings,
  template: ProxyTemplate,
  target: PodTarget,
  apps: readonly JsonObject[],
  userProxy: JsonObject | undefined,
  prometheus: Record<string, string>,
  probers: string | undefined,
): JsonObject {
  const gateway = options.template === 'gateway';
  const isDefault = settings.template === undefined || gateway;
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
  // The gateway template lists every container's ports, its own istio-proxy's (the gateway's listeners) included.
  const ports = [...apps, ...(gateway && userProxy ? [userProxy] : [])].flatMap((c) => (asArray(c.ports) ?? []).filter(isObject));
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
    if (!gateway) proxy.startupProbe ??= { failureThreshold: settings.startupFailureThreshold, httpGet: ready, periodSeconds: 1, timeoutSeconds: 3 };
    const readiness: JsonObject = { failureThreshold: options.readiness.failureThreshold, httpGet: ready };
    if (options.readiness.initialDelaySeconds > 0) readiness.initialDelaySeconds = options.readiness.initialDelaySeconds;
    readiness.periodSeconds = options.readiness.periodSeconds;
    readiness.timeoutSeconds = 3;
    proxy.readinessProbe ??= readiness;
  } else {
    delete proxy.startupProbe;
    delete proxy.readinessProbe;
  }
  // The gateway template sets no resources (and reads no resource annotations): the user's stand.
  if (!gateway && (options.resources || proxy.resources === undefined)) proxy.resources = clone(options.resources ?? settings.resources);
  if (options.userVolumeMounts.length > 0) proxy.volumeMounts = [...(asArray(proxy.volumeMounts) ?? []), ...options.userVolumeMounts];

  if (options.mode === 'TPROXY' && !gateway) {
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
export function applyOverride(generated: JsonObject, user: JsonObject): JsonObject {
  const over: JsonObject = { ...user };
  if (over.image === 'auto') delete over.image;
  return strategicMerge(generated, over);
}

/**
 * Istio's fix-up after the user's istio-proxy is laid over the generated one:
 * TPROXY needs the proxy as root (it binds with IP_TRANSPARENT and marks
 * packets), so a user's runAsUser cannot stand; the user's uid still goes to
 * istio-init's -u (capture-args.ts). runAsNonRoot is cleared too, or the
 * kubelet would refuse to start a root proxy.
 */
export function tproxyFixups(proxy: JsonObject, options: PodOptions): JsonObject {
  if (options.mode !== 'TPROXY' || options.template === 'gateway') return proxy;
  return { ...proxy, securityContext: { ...(asObject(proxy.securityContext) ?? {}), runAsNonRoot: false, runAsUser: 0 } };
}
