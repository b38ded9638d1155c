/**
 * The proxy container and its volumes: by default an Istio proxyv2-compatible
 * sidecar (the fields of Istio's `sidecar` template), replaceable as a whole
 * with `meshcap inject --template FILE`. Pure.
 */
import YAML from 'yaml';
import { ConfigError } from '../config/parse.js';
import { deepFreeze, isObject, type JsonObject } from './json.js';
import { type InjectSettings, type ProxyTemplate, proxyImage } from './settings.js';

const fieldRef = (path: string): JsonObject => ({ valueFrom: { fieldRef: { fieldPath: path } } });
const resourceRef = (resource: string): JsonObject => ({ valueFrom: { resourceFieldRef: { divisor: '1', resource } } });

const builtTemplates = new WeakMap<InjectSettings, ProxyTemplate>();

/** The default template for these settings, built once per settings object and frozen: every pod shares it. */
export function defaultTemplate(settings: InjectSettings): ProxyTemplate {
  let template = builtTemplates.get(settings);
  if (!template) {
    template = buildDefaultTemplate(settings);
    builtTemplates.set(settings, template);
  }
  return template;
}

const builtGateways = new WeakMap<InjectSettings, ProxyTemplate>();

/**
 * Istio's `gateway` template (inject.istio.io/templates: gateway): the proxy
 * runs as a router, is the pod's main container rather than a sidecar, has no
 * startup probe, no privileges to drop beyond its uid and gid, and no CRL
 * volume. Built from the sidecar template's env and volumes, so the two agree.
 */
export function gatewayTemplate(settings: InjectSettings): ProxyTemplate {
  let template = builtGateways.get(settings);
  if (!template) {
    const sidecar = buildDefaultTemplate(settings);
    const mounts = new Map((sidecar.container.volumeMounts as JsonObject[]).map((m) => [m.name, m]));
    const container: JsonObject = {
      name: 'istio-proxy',
      image: proxyImage(settings),
      args: ['proxy', 'router', '--domain', `$(POD_NAMESPACE).svc.${settings.mesh.clusterDomain}`],
      env: sidecar.container.env!,
      ports: sidecar.container.ports!,
      securityContext: { runAsGroup: settings.proxyGid, runAsUser: settings.proxyUid },
      volumeMounts: ['workload-socket', 'credential-socket', 'workload-certs', 'istiod-ca-cert', 'istio-data', 'istio-envoy', 'istio-token', 'istio-podinfo']
        .map((name) => mounts.get(name)!),
    };
    template = { container: deepFreeze(container), volumes: deepFreeze(sidecar.volumes.filter((v) => v.name !== 'istio-ca-crl')) };
    builtGateways.set(settings, template);
  }
  return template;
}

function buildDefaultTemplate(settings: InjectSettings): ProxyTemplate {
  const { mesh } = settings;
  const container: JsonObject = {
    name: 'istio-proxy',
    image: proxyImage(settings),
    args: [
      'proxy',
      'sidecar',
      '--domain',
      `$(POD_NAMESPACE).svc.${mesh.clusterDomain}`,
    ],
    env: [
      { name: 'PILOT_CERT_PROVIDER', value: 'istiod' },
      { name: 'CA_ADDR', value: mesh.caAddress },
      { name: 'POD_NAME', ...fieldRef('metadata.name') },
      { name: 'POD_NAMESPACE', ...fieldRef('metadata.namespace') },
      { name: 'INSTANCE_IP', ...fieldRef('status.podIP') },
      { name: 'SERVICE_ACCOUNT', ...fieldRef('spec.serviceAccountName') },
      { name: 'HOST_IP', ...fieldRef('status.hostIP') },
      { name: 'ISTIO_CPU_LIMIT', ...resourceRef('limits.cpu') },
      { name: 'GOMEMLIMIT', ...resourceRef('limits.memory') },
      { name: 'ISTIO_META_CLUSTER_ID', value: mesh.clusterId },
      { name: 'ISTIO_META_NODE_NAME', ...fieldRef('spec.nodeName') },
      { name: 'ISTIO_META_MESH_ID', value: mesh.meshId },
      { name: 'TRUST_DOMAIN', value: mesh.trustDomain },
      ...(mesh.network !== '' ? [{ name: 'ISTIO_META_NETWORK', value: mesh.network }] : []),
    ],
    ports: [{ containerPort: 15090, name: 'http-envoy-prom', protocol: 'TCP' }],
    securityContext: {
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      privileged: false,
      readOnlyRootFilesystem: true,
      runAsGroup: settings.proxyGid,
      runAsNonRoot: true,
      runAsUser: settings.proxyUid,
    },
    volumeMounts: [
      { mountPath: '/var/run/secrets/workload-spiffe-uds', name: 'workload-socket' },
      { mountPath: '/var/run/secrets/credential-uds', name: 'credential-socket' },
      { mountPath: '/var/run/secrets/workload-spiffe-credentials', name: 'workload-certs' },
      { mountPath: '/var/run/secrets/istio', name: 'istiod-ca-cert' },
      { mountPath: '/var/run/secrets/istio/crl', name: 'istio-ca-crl' },
      { mountPath: '/var/lib/istio/data', name: 'istio-data' },
      { mountPath: '/etc/istio/proxy', name: 'istio-envoy' },
      { mountPath: '/var/run/secrets/tokens', name: 'istio-token' },
      { mountPath: '/etc/istio/pod', name: 'istio-podinfo' },
    ],
  };
  const volumes: JsonObject[] = [
    // Istio renders these three without a source; the API server defaults them to emptyDir. Explicit here.
    { name: 'workload-socket', emptyDir: {} },
    { name: 'credential-socket', emptyDir: {} },
    { name: 'workload-certs', emptyDir: {} },
    { name: 'istio-envoy', emptyDir: { medium: 'Memory' } },
    { name: 'istio-data', emptyDir: {} },
    {
      name: 'istio-podinfo',
      downwardAPI: {
        items: [
          { fieldRef: { fieldPath: 'metadata.labels' }, path: 'labels' },
          { fieldRef: { fieldPath: 'metadata.annotations' }, path: 'annotations' },
        ],
      },
    },
    {
      name: 'istio-token',
      projected: { sources: [{ serviceAccountToken: { audience: 'istio-ca', expirationSeconds: 43200, path: 'istio-token' } }] },
    },
    { name: 'istiod-ca-cert', configMap: { name: 'istio-ca-root-cert' } },
    { name: 'istio-ca-crl', configMap: { name: 'istio-ca-crl', optional: true } },
  ];
  return { container: deepFreeze(container), volumes: deepFreeze(volumes) };
}

/**
 * A template file: YAML with `container` (the istio-proxy container) and
 * optional `volumes`. No templating language: per-pod values (ordering,
 * probes, env, resources, log levels) are added by the engine.
 */
export function parseTemplate(text: string, source: string): ProxyTemplate {
  let value: unknown;
  try {
    value = YAML.parse(text, { maxAliasCount: 100 });
  } catch (error) {
    throw new ConfigError('--template', source, `does not parse as YAML: ${(error as Error).message.split('\n')[0]}`, 'give a YAML mapping with container: and volumes:', '');
  }
  const allowed = 'give a YAML mapping with container: (a Container) and optionally volumes: (a list of Volumes)';
  if (!isObject(value) || !isObject(value.container)) {
    throw new ConfigError('--template', source, 'has no container: mapping', allowed, '');
  }
  const volumes = value.volumes ?? [];
  if (!Array.isArray(volumes) || !volumes.every((v) => isObject(v) && typeof v.name === 'string')) {
    throw new ConfigError('--template', source, 'volumes: is not a list of named volumes', allowed, '');
  }
  for (const key of Object.keys(value)) {
    if (key !== 'container' && key !== 'volumes') throw new ConfigError('--template', source, `has an unknown key ${JSON.stringify(key)}`, allowed, '');
  }
  return { container: deepFreeze({ ...value.container, name: 'istio-proxy' }), volumes: deepFreeze(volumes as JsonObject[]) };
}

export function renderTemplate(template: ProxyTemplate): string {
  return YAML.stringify({ container: template.container, volumes: template.volumes }, { indentSeq: false });
}
