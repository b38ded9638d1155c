/**
 * Install-level injection settings: what Istio keeps in its injector ConfigMap
 * (values + mesh config). Defaults are Istio's chart defaults, except where
 * meshcap deliberately differs (the init image, and holding the application in
 * the legacy layout). Pure data.
 */
import { meshcapVersion } from '../version.js';
import type { JsonObject } from './json.js';
import type { AttachmentRef } from './multus.js';

export type InitStyle = 'meshcap' | 'istio';

export interface MeshSettings {
  readonly clusterDomain: string;
  readonly istioNamespace: string;
  readonly caAddress: string;
  readonly trustDomain: string;
  readonly meshId: string;
  readonly clusterId: string;
  /** Istio's values.global.network: the topology.istio.io/network label and ISTIO_META_NETWORK; '' for none. */
  readonly network: string;
}

export interface ProxyTemplate {
  /** The istio-proxy container before per-pod values (ordering, env, resources) are applied. */
  readonly container: JsonObject;
  /** Pod volumes the proxy needs; listed in the status annotation so re-injection can strip them. */
  readonly volumes: readonly JsonObject[];
}

export interface InjectSettings {
  /** meshcap: `command: [meshcap]` with the meshcap image; istio: Istio's proxyv2 image, args only. */
  readonly initStyle: InitStyle;
  readonly meshcapImage: string;
  readonly hub: string;
  readonly tag: string;
  readonly nativeSidecars: boolean;
  readonly holdApplicationUntilProxyStarts: boolean;
  /** Istio's sidecarInjectorWebhook.rewriteAppHTTPProbe: app probes go through the agent (probes.ts). */
  readonly rewriteAppProbes: boolean;
  readonly revision: string;
  readonly proxyUid: number;
  readonly proxyGid: number;
  readonly statusPort: number;
  readonly proxyPort: number;
  readonly inboundCapturePort: number;
  readonly interceptionMode: string;
  readonly includeIPRanges: string;
  readonly excludeIPRanges: string;
  readonly includeInboundPorts: string;
  readonly excludeInboundPorts: string;
  readonly includeOutboundPorts: string;
  readonly excludeOutboundPorts: string;
  readonly logLevel: string;
  /**
   * Istio's CNI layout (pilot.cni.enabled): the node's CNI plugin captures, the
   * pod gets an unprivileged istio-validation instead of istio-init and carries
   * its capture settings in annotations the plugin reads.
   */
  readonly cni: boolean;
  /**
   * CNI layout under Multus: the NetworkAttachmentDefinition (`[namespace/]name`) that runs
   * meshcap-cni, added to each pod's k8s.v1.cni.cncf.io/networks; undefined when chained.
   */
  readonly cniNetworkAttachment: AttachmentRef | undefined;
  /** Adds --native-nftables to istio-init (Istio's global.nativeNftables). */
  readonly nativeNftables: boolean;
  readonly readiness: { readonly initialDelaySeconds: number; readonly periodSeconds: number; readonly failureThreshold: number };
  readonly startupFailureThreshold: number;
  readonly resources: JsonObject;
  readonly mesh: MeshSettings;
  /** undefined: the built-in Istio-compatible template (see template.ts). */
  readonly template: ProxyTemplate | undefined;
}

export const DEFAULT_SETTINGS: InjectSettings = {
  initStyle: 'meshcap',
  meshcapImage: `ghcr.io/meshcap/meshcap:${meshcapVersion()}`,
  hub: 'docker.io/istio',
  tag: '1.27.0',
  nativeSidecars: true,
  // Istio defaults to false; without it the app races the proxy (istio#11130), so meshcap holds by default.
  holdApplicationUntilProxyStarts: true,
  rewriteAppProbes: true,
  revision: 'default',
  proxyUid: 1337,
  proxyGid: 1337,
  statusPort: 15020,
  proxyPort: 15001,
  inboundCapturePort: 15006,
  interceptionMode: 'REDIRECT',
  includeIPRanges: '*',
  excludeIPRanges: '',
  includeInboundPorts: '*',
  excludeInboundPorts: '',
  includeOutboundPorts: '',
  excludeOutboundPorts: '',
  logLevel: 'default:info',
  cni: false,
  cniNetworkAttachment: undefined,
  nativeNftables: false,
  readiness: { initialDelaySeconds: 0, periodSeconds: 15, failureThreshold: 4 },
  startupFailureThreshold: 600,
  resources: { limits: { cpu: '2', memory: '1Gi' }, requests: { cpu: '100m', memory: '128Mi' } },
  mesh: {
    clusterDomain: 'cluster.local',
    istioNamespace: 'istio-system',
    caAddress: 'istiod.istio-system.svc:15012',
    trustDomain: 'cluster.local',
    meshId: 'cluster.local',
    clusterId: 'Kubernetes',
    network: '',
  },
  template: undefined,
};

export function proxyImage(settings: InjectSettings): string {
  return `${settings.hub}/proxyv2:${settings.tag}`;
}

export function initImage(settings: InjectSettings): string {
  return settings.initStyle === 'meshcap' ? settings.meshcapImage : proxyImage(settings);
}
