/**
 * The one derivation from a pod's annotations to the `istio-iptables` argument
 * list its capture gets: what the injector writes into istio-init, what the CNI
 * plugin applies at sandbox creation and what the node audit expects to find.
 * All three call this module, so no port, default or ordering can drift between
 * them (Istio's plugin re-derives on its own and does drift: istio/cni#84). Pure.
 *
 * Contract of captureArgsFromAnnotations(annotations, opts):
 * - `annotations`: the pod's annotations as the API server (or the runtime's
 *   `io.kubernetes.cri.pod-annotations`) has them. Every annotation that shapes
 *   capture is read: sidecar.istio.io/interceptionMode, proxy.istio.io/config
 *   (interceptionMode, proxyMetadata), traffic.sidecar.istio.io/* ,
 *   istio.io/reroute-virtual-interfaces, status.sidecar.istio.io/port,
 *   sidecar.istio.io/agentLogLevel, and meshcap.io/proxy-uid (see below).
 * - `opts.settings`: the install settings (Istio's injector values: ports
 *   15001/15006, proxy uid, default ranges, log level, native nftables).
 *   DEFAULT_SETTINGS, which are Istio's chart defaults, when omitted; the
 *   plugin and the audit must use the injector's install settings.
 * - `opts.proxyRunAsUser`: the runAsUser of the istio-proxy container the user
 *   declared in the pod (a pod fact, not an annotation). Istio then exempts that
 *   uid (`-u`) instead of the install's, unless it is 0. When absent, the
 *   annotation meshcap.io/proxy-uid (written by the CNI layout for exactly this
 *   case) stands for it.
 * - Returns the full argument list, starting with the subcommand
 *   `istio-iptables` exactly as istio-init's `args` (pass `.slice(1)` to
 *   parseCaptureConfig), or undefined when the pod gets no capture (the
 *   injector writes no istio-init, the plugin must skip): interception mode
 *   NONE, or Istio's gateway template (inject.istio.io/templates: gateway),
 *   whose proxy is the pod itself.
 * - Throws ConfigError naming the annotation and value when a capture
 *   annotation is invalid; the injector refuses such a pod, so a plugin never
 *   sees one it wrote. Annotations that do not decide capture are not read, so
 *   a pod another injector wrote (Istio's, more lenient) is never failed for them.
 * captureEnvFromAnnotations gives the env istio-init gets besides (the
 * proxyMetadata of proxy.istio.io/config, e.g. ISTIO_META_DNS_CAPTURE), which
 * istio-iptables reads as flag fallbacks; of it, only RULE_ENV_NAMES may reach
 * a capture run on the node.
 */
import { ENV_ONLY, type FlagKey, flagByKey } from '../config/flags.js';
import { ConfigError } from '../config/parse.js';
import { Annotation, type CaptureOptions, readCaptureOptions } from './annotations.js';
import { DEFAULT_SETTINGS, type InjectSettings } from './settings.js';

/** Written by the CNI layout when the user's istio-proxy runs as its own uid: the plugin cannot read containers. */
export const PROXY_UID_ANNOTATION = 'meshcap.io/proxy-uid';

export interface CaptureArgsOptions {
  readonly settings?: InjectSettings;
  readonly proxyRunAsUser?: number;
  /** For messages: `Pod "default/hello-*****"`. */
  readonly subject?: string;
}

export function captureArgsFromAnnotations(annotations: Readonly<Record<string, string>>, opts: CaptureArgsOptions = {}): string[] | undefined {
  const settings = opts.settings ?? DEFAULT_SETTINGS;
  const options = readCaptureOptions(annotations, settings, opts.subject ?? 'the pod');
  if (options.mode === 'NONE' || isGateway(annotations)) return undefined;
  return captureArgs(options, settings, opts.proxyRunAsUser ?? uidAnnotation(annotations, opts.subject ?? 'the pod'));
}

/**
 * The proxyMetadata variables that shape the rules, as istio-init reads them. The CNI plugin and the
 * node audit run the capture as root on the node (or in the agent, with the node's CNI dirs mounted),
 * so only these reach it: dry-run and log file paths, another namespace, an iptables binary, the
 * host-netns guard, lock and probe settings named in a pod's annotation must not steer a node process.
 */
const RULE_FLAGS: readonly FlagKey[] = [
  'proxyPort', 'inboundCapturePort', 'inboundTunnelPort', 'proxyUid', 'proxyGid', 'interceptionMode', 'inboundPorts',
  'inboundPortsExclude', 'excludeInterfaces', 'outboundCidrs', 'outboundCidrsExclude', 'outboundPorts', 'outboundPortsExclude',
  'rerouteInterfaces', 'tproxyMark', 'tproxyRouteTable', 'redirectDns', 'dropInvalid', 'dualStack', 'captureAllDns',
  'nativeNftables', 'ipv6', 'dnsServersV4', 'dnsServersV6', 'cidrSets',
];
export const RULE_ENV_NAMES: ReadonlySet<string> = new Set([
  ...RULE_FLAGS.flatMap((key) => [flagByKey(key).env, flagByKey(key).additionalEnv].filter((e): e is string => e !== undefined)),
  ENV_ONLY.ownerGroupsInclude.env, ENV_ONLY.ownerGroupsExclude.env, ENV_ONLY.loopbackCidr.env,
]);

export function captureEnvFromAnnotations(annotations: Readonly<Record<string, string>>, opts: CaptureArgsOptions = {}): [string, string][] {
  const options = readCaptureOptions(annotations, opts.settings ?? DEFAULT_SETTINGS, opts.subject ?? 'the pod');
  return options.proxyMetadata.map(([name, value]) => [name, value]);
}

/** Read as the injector reads it (annotations.ts readTemplateName); other template names are not this module's to judge. */
function isGateway(annotations: Readonly<Record<string, string>>): boolean {
  return annotations[Annotation.templates]?.trim() === 'gateway';
}

function uidAnnotation(annotations: Readonly<Record<string, string>>, subject: string): number | undefined {
  const text = annotations[PROXY_UID_ANNOTATION];
  if (text === undefined) return undefined;
  if (!/^[0-9]{1,10}$/.test(text) || Number(text) > 0xfffffffe) {
    throw new ConfigError(`annotation ${PROXY_UID_ANNOTATION}`, text, 'is not a uid', "remove it, or restore the value the injector wrote (the istio-proxy container's runAsUser)", `on ${subject}`);
  }
  return Number(text);
}

/**
 * The uid istio-iptables exempts: the uid the user's own istio-proxy declares
 * (never 0: --uid-owner 0 would exempt every root process), in every mode, as
 * Istio's post-merge fix-up does; else 1337 in TPROXY mode (Istio's template
 * hard-codes it there) and the install's proxy uid otherwise.
 */
export function captureUid(options: CaptureOptions, settings: InjectSettings, proxyRunAsUser: number | undefined): string {
  if (proxyRunAsUser !== undefined && proxyRunAsUser > 0) return String(proxyRunAsUser);
  if (options.mode === 'TPROXY') return '1337';
  return String(settings.proxyUid);
}

/** istio-init's args from already read annotations: the injector's entry point, the same derivation. */
export function captureArgs(options: CaptureOptions, settings: InjectSettings, proxyRunAsUser: number | undefined): string[] {
  const tail = excludedInbound(options.statusPort, options.excludeInboundPorts);
  const args = [
    'istio-iptables',
    '-p', String(settings.proxyPort),
    '-z', String(settings.inboundCapturePort),
    '-u', captureUid(options, settings, proxyRunAsUser),
    '-m', options.mode,
    '-i', options.includeOutboundIPRanges,
    '-x', options.excludeOutboundIPRanges,
    '-b', options.includeInboundPorts,
    '-d', tail === '' ? '15090,15021' : `15090,15021,${tail}`,
  ];
  if (options.includeOutboundPorts !== undefined) args.push('-q', options.includeOutboundPorts);
  if (options.excludeOutboundPorts !== undefined) args.push('-o', options.excludeOutboundPorts);
  if (options.rerouteInterfaces !== undefined) args.push('-k', options.rerouteInterfaces);
  if (options.excludeInterfaces !== undefined) args.push('-c', options.excludeInterfaces);
  args.push(`--log_output_level=${options.agentLogLevel}`);
  if (settings.nativeNftables) args.push('--native-nftables');
  return args;
}

/**
 * The CNI layout's annotations (Istio's template writes the same, plus
 * meshcap.io/proxy-uid): what the plugin reads, in place of the istio-init args
 * it cannot see. captureArgsFromAnnotations on the pod's annotations with these
 * laid over them gives exactly captureArgs(options, settings, proxyRunAsUser)
 * for the same install settings. The ranges are written only when non-empty
 * and the outbound ports only when set, as Istio does: absent, they fall back
 * to the same install default on both sides.
 */
export function captureAnnotations(options: CaptureOptions, proxyRunAsUser: number | undefined): Record<string, string> {
  const out: Record<string, string> = { [Annotation.interceptionMode]: options.mode };
  if (options.includeOutboundIPRanges !== '') out[Annotation.includeOutboundIPRanges] = options.includeOutboundIPRanges;
  if (options.excludeOutboundIPRanges !== '') out[Annotation.excludeOutboundIPRanges] = options.excludeOutboundIPRanges;
  out[Annotation.includeInboundPorts] = options.includeInboundPorts;
  out[Annotation.excludeInboundPorts] = excludedInbound(options.statusPort, options.excludeInboundPorts);
  if (options.includeOutboundPorts !== undefined) out[Annotation.includeOutboundPorts] = options.includeOutboundPorts;
  if (options.excludeOutboundPorts !== undefined) out[Annotation.excludeOutboundPorts] = options.excludeOutboundPorts;
  if (proxyRunAsUser !== undefined && proxyRunAsUser > 0) out[PROXY_UID_ANNOTATION] = String(proxyRunAsUser);
  return out;
}

/** Istio's excludeInboundPort helper: the status port is excluded from capture unless it is 0 or already listed. */
export function excludedInbound(statusPort: number, excluded: string): string {
  const port = String(statusPort);
  if (statusPort === 0) return excluded;
  const items = excluded.split(',').map((item) => item.trim());
  if (items.includes(port)) return excluded;
  return excluded === '' ? port : `${excluded},${port}`;
}
