/**
 * Whether a pod is captured, and with which istio-iptables arguments, from
 * its annotations alone (pure). The arguments come from the injector's own
 * derivation (src/inject), so the plugin cannot drift from what istio-init
 * would have run: no port, default or exclusion is re-derived here.
 */
import { ConfigError } from '../config/parse.js';
import { Annotation as A } from '../inject/annotations.js';
import { captureArgsFromAnnotations, captureEnvFromAnnotations, RULE_ENV_NAMES } from '../inject/capture-args.js';
import { parseStatus } from '../inject/status-annotation.js';
import type { PluginSettings, PodRef } from './request.js';
import { CniCode, CniError, details } from './spec.js';

/** Set on the agent's own pod template: it is never captured and never waits for the API. */
export const AGENT_ANNOTATION = 'meshcap.io/cni-agent';
const PROXY = 'istio-proxy';
/** Init containers that do the capture themselves: capturing again would double it (istio#18021). */
const SELF_CAPTURE_INITS = ['istio-init', 'linkerd-init', 'kuma-init'];


export type Decision =
  | { readonly kind: 'skip'; readonly reason: string }
  /**
   * args: istio-iptables' (without the program name); env: what istio-init gets besides (proxyMetadata)
   * that shapes the rules; ignoredEnv: the proxyMetadata names left out (RULE_ENV_NAMES): the in-netns half
   * runs as root on the node, and a pod's annotation must not steer a node process.
   */
  | { readonly kind: 'capture'; readonly args: readonly string[]; readonly env: readonly (readonly [string, string])[]; readonly ignoredEnv: readonly string[] };

export function skipWithoutPod(pod: PodRef | undefined, settings: PluginSettings): Decision | undefined {
  if (!pod) return { kind: 'skip', reason: 'not a Kubernetes pod (no K8S_POD_NAMESPACE/K8S_POD_NAME in CNI_ARGS)' };
  if (settings.excludeNamespaces.includes(pod.namespace)) return { kind: 'skip', reason: `namespace ${pod.namespace} is excluded (excludeNamespaces)` };
  return undefined;
}

/** The arguments istio-init would have been given for these annotations (without the program name); undefined for NONE. */
export function captureArgs(annotations: Readonly<Record<string, string>>, subject: string): string[] | undefined {
  return captureArgsFromAnnotations(annotations, { subject })?.slice(1);
}

export function decide(annotations: Readonly<Record<string, string>>, pod: PodRef): Decision {
  const subject = `pod ${pod.namespace}/${pod.name}`;
  try {
    if (annotations[AGENT_ANNOTATION] !== undefined) return { kind: 'skip', reason: "the meshcap CNI agent's own pod" };
    if (annotations[A.inject] === 'false') return { kind: 'skip', reason: `${A.inject}=false` };
    const status = parseStatus(annotations[A.status], subject);
    if (!status) return { kind: 'skip', reason: `not injected (no ${A.status} annotation)` };
    const own = status.initContainers.find((name) => SELF_CAPTURE_INITS.includes(name));
    if (own) return { kind: 'skip', reason: `the pod captures itself with its ${own} init container` };
    if (!status.containers.includes(PROXY) && !status.initContainers.includes(PROXY)) {
      return { kind: 'skip', reason: `${A.status} lists no ${PROXY} container` };
    }
    if ((annotations[A.interceptionMode] ?? '') === 'NONE') return { kind: 'skip', reason: `${A.interceptionMode}=NONE` };
    const args = captureArgs(annotations, subject);
    if (!args) return { kind: 'skip', reason: 'interception mode NONE (from proxy.istio.io/config)' };
    const env = captureEnvFromAnnotations(annotations, { subject });
    // Istio's escape hatch: the proxy runs without Envoy, so nothing may be redirected to it.
    if (env.some(([name, value]) => name === 'DISABLE_ENVOY' && /^(1|t|true)$/i.test(value))) return { kind: 'skip', reason: 'DISABLE_ENVOY=true in proxy.istio.io/config proxyMetadata' };
    return { kind: 'capture', args, env: env.filter(([name]) => RULE_ENV_NAMES.has(name)), ignoredEnv: env.map(([name]) => name).filter((name) => !RULE_ENV_NAMES.has(name)) };
  } catch (error) {
    if (error instanceof ConfigError) {
      throw new CniError(CniCode.InvalidConfig, `invalid ${error.subject} on ${subject}: ${JSON.stringify(error.value)}`, details(error.problem, `${error.allowed}; then delete the pod so it is re-created`));
    }
    throw error;
  }
}
