/**
 * The capture a sandbox should have, from its annotations alone: whether it is
 * injected at all, in which layout, and the istio-iptables arguments the
 * injector (init-container layout) or the CNI plugin (CNI layout) derive from
 * the same annotations. The CRI never exposes an init container's arguments,
 * so the annotations are the only source both layouts share. Pure.
 */
import { parseCaptureConfig } from '../config/parse.js';
import type { CaptureConfig, HostFacts } from '../config/types.js';
import { Annotation } from '../inject/annotations.js';
import { captureArgsFromAnnotations, captureEnvFromAnnotations, RULE_ENV_NAMES } from '../inject/capture-args.js';
import { DEFAULT_SETTINGS, type InjectSettings } from '../inject/settings.js';
import { parseStatus } from '../inject/status-annotation.js';
import { INIT_NAME } from '../inject/target.js';
import type { Layout, Sandbox } from './types.js';

export type Desired =
  /** Not a mesh pod (or one that asks for no capture): the audit leaves it alone and does not list it. */
  | { readonly kind: 'not-injected'; readonly reason: string }
  /** Injected, but its annotations cannot be turned into a capture: reported, never repaired. */
  | { readonly kind: 'invalid'; readonly layout: Layout; readonly problem: string }
  | {
      readonly kind: 'capture';
      readonly layout: Layout;
      /** istio-iptables arguments (without the command name) and environment. */
      readonly args: readonly string[];
      readonly env: Readonly<Record<string, string>>;
      readonly config: CaptureConfig;
    };

export function desiredCapture(sandbox: Sandbox, settings: InjectSettings = DEFAULT_SETTINGS): Desired {
  const annotations = sandbox.annotations;
  const subject = `pod ${sandbox.namespace}/${sandbox.name}`;
  if (annotations[Annotation.status] === undefined) return { kind: 'not-injected', reason: `no ${Annotation.status} annotation` };
  if (annotations[Annotation.inject] === 'false') return { kind: 'not-injected', reason: `${Annotation.inject}=false` };
  let layout: Layout = 'cni';
  try {
    const status = parseStatus(annotations[Annotation.status], subject);
    if (status?.initContainers.includes(INIT_NAME)) layout = 'init-container';
    // The injector's own derivation: the same args istio-init got, or the CNI plugin applied.
    const full = captureArgsFromAnnotations(annotations, { settings, subject });
    if (full === undefined) return { kind: 'not-injected', reason: 'interceptionMode NONE: no capture is wanted' };
    const args = full.slice(1);
    // Only what shapes the rules: the repair runs in the agent, which has the node's CNI dirs mounted.
    const env = Object.fromEntries(captureEnvFromAnnotations(annotations, { settings, subject }).filter(([name]) => RULE_ENV_NAMES.has(name)));
    return { kind: 'capture', layout, args, env, config: parseCaptureConfig(args, env, podFacts(sandbox)) };
  } catch (error) {
    return { kind: 'invalid', layout, problem: (error as Error).message };
  }
}

/** The facts istio-init would read inside the pod, as the runtime reports them. */
function podFacts(sandbox: Sandbox): HostFacts {
  return {
    interfaceAddresses: () => sandbox.addresses,
    // DNS capture servers come from the pod's resolv.conf, which the audit does not read: Istio's
    // flags name them explicitly (--dns-servers-v4/-v6) when they matter.
    resolvConf: () => undefined,
    lookupUid: () => undefined,
  };
}
