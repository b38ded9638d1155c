/** `meshcap inject -f FILE|-`: argument wiring for the injection engine (src/inject). */
import { readFileSync } from 'node:fs';
import { parseGoBool } from '../config/argv.js';
import { ConfigError, UsageError } from '../config/parse.js';
import { injectManifests } from '../inject/manifest.js';
import { type AttachmentRef, parseAttachmentRef } from '../inject/multus.js';
import { DEFAULT_SETTINGS, type InjectSettings } from '../inject/settings.js';
import { defaultTemplate, parseTemplate, renderTemplate } from '../inject/template.js';
import { parseCommandArgs } from './args.js';
import type { Command } from './context.js';
import { ExitCode } from '../errors.js';
import { reportError } from './report.js';

export const INJECT_HELP = `Usage: meshcap inject -f FILE|- [options]

Add the mesh sidecar to Kubernetes manifests (like istioctl kube-inject, offline)
and write them to stdout. Handles multi-document YAML and v1 List; injects Pod,
Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job,
CronJob and OpenShift DeploymentConfig; every other document, and every skipped
one, is copied byte for byte (other kinds with a pod template with a warning).
Skipped with a warning: hostNetwork: true, sidecar.istio.io/inject: "false".
Templates (inject.istio.io/templates): sidecar (default) and gateway.
Re-running on injected output changes nothing.

Options:
  -f, --filename FILE|-          manifests to inject ('-' reads stdin)
      --init-image meshcap|istio  istio-init runs meshcap (default) or Istio's proxyv2 image
      --image IMAGE               the meshcap image [default ${DEFAULT_SETTINGS.meshcapImage}]
      --hub HUB, --tag TAG        proxyv2 image = HUB/proxyv2:TAG [default ${DEFAULT_SETTINGS.hub}, ${DEFAULT_SETTINGS.tag}]
      --native-sidecars BOOL      proxy as a native sidecar init container [default true]
                                  (per pod: annotation sidecar.istio.io/nativeSidecar)
      --hold-application BOOL     legacy layout: start the proxy first and hold the app until it is
                                  ready [default true] (per pod: proxy.istio.io/config holdApplicationUntilProxyStarts)
      --rewrite-app-probes BOOL   send the app's httpGet/tcpSocket/grpc probes through the agent's
                                  status port, as Istio does [default true]
                                  (per pod: annotation sidecar.istio.io/rewriteAppHTTPProbers)
      --template FILE             proxy container and volumes (YAML: container:, volumes:)
      --print-template            print the built-in template (a starting point for --template)
      --revision REV              istio.io/rev written to pods [default default]
      --native-nftables           istio-init uses native nftables
      --cni                       Istio's CNI layout: the node's CNI plugin captures; pods get an
                                  unprivileged istio-validation init container and their capture
                                  settings as annotations (traffic.sidecar.istio.io/*)
      --cni-network-attachment [NS/]NAME
                                  with --cni, under Multus (meshcap cni install --config-mode
                                  standalone): add this NetworkAttachmentDefinition to each pod's
                                  k8s.v1.cni.cncf.io/networks, keeping what it lists, once
                                  (deploy/cni-multus.yaml defines default/meshcap-cni)
      --network NAME              mesh network: label topology.istio.io/network, ISTIO_META_NETWORK

Invalid annotation values (e.g. traffic.sidecar.istio.io/includeOutboundIPRanges: "bad")
are rejected with exit code 2, naming the annotation and the value.
`;

export interface InjectOptionValues {
  readonly 'init-image'?: string;
  readonly image?: string;
  readonly hub?: string;
  readonly tag?: string;
  readonly 'native-sidecars'?: string;
  readonly 'hold-application'?: string;
  readonly 'rewrite-app-probes'?: string;
  readonly template?: string;
  readonly revision?: string;
  readonly 'native-nftables'?: boolean;
  readonly cni?: boolean;
  readonly 'cni-network-attachment'?: string;
  readonly network?: string;
}

export const SETTINGS_OPTIONS = {
  'init-image': { type: 'string' },
  image: { type: 'string' },
  hub: { type: 'string' },
  tag: { type: 'string' },
  'native-sidecars': { type: 'string' },
  'hold-application': { type: 'string' },
  'rewrite-app-probes': { type: 'string' },
  template: { type: 'string' },
  revision: { type: 'string' },
  'native-nftables': { type: 'boolean' },
  cni: { type: 'boolean' },
  'cni-network-attachment': { type: 'string' },
  network: { type: 'string' },
} as const;

function attachment(values: InjectOptionValues): AttachmentRef | undefined {
  const text = values['cni-network-attachment'];
  if (text === undefined) return undefined;
  // Chained, the runtime already runs meshcap-cni: a Multus network would run it a second time.
  if (!values.cni) throw new ConfigError('--cni-network-attachment', text, 'applies to the CNI layout only', 'add --cni, or drop --cni-network-attachment', '');
  return parseAttachmentRef(text);
}

/** Settings from the options shared by `inject` and `webhook`; reads the template file. */
export function settingsFromOptions(values: InjectOptionValues): InjectSettings {
  const bool = (name: string, text: string | undefined, fallback: boolean): boolean => {
    if (text === undefined) return fallback;
    const value = parseGoBool(text);
    if (value === undefined) throw new ConfigError(`--${name}`, text, 'is not a boolean', 'use true or false', '');
    return value;
  };
  const style = values['init-image'] ?? DEFAULT_SETTINGS.initStyle;
  if (style !== 'meshcap' && style !== 'istio') {
    throw new ConfigError('--init-image', style, 'is not an init image choice', 'use meshcap or istio', '');
  }
  const text = (name: string, value: string | undefined, fallback: string): string => {
    if (value === undefined) return fallback;
    if (value === '' || /[\s\u0000-\u001f]/.test(value)) throw new ConfigError(`--${name}`, value, 'is empty or contains whitespace', 'give a plain value', '');
    return value;
  };
  let settings: InjectSettings = {
    ...DEFAULT_SETTINGS,
    initStyle: style,
    meshcapImage: text('image', values.image, DEFAULT_SETTINGS.meshcapImage),
    hub: text('hub', values.hub, DEFAULT_SETTINGS.hub),
    tag: text('tag', values.tag, DEFAULT_SETTINGS.tag),
    nativeSidecars: bool('native-sidecars', values['native-sidecars'], DEFAULT_SETTINGS.nativeSidecars),
    holdApplicationUntilProxyStarts: bool('hold-application', values['hold-application'], DEFAULT_SETTINGS.holdApplicationUntilProxyStarts),
    rewriteAppProbes: bool('rewrite-app-probes', values['rewrite-app-probes'], DEFAULT_SETTINGS.rewriteAppProbes),
    revision: text('revision', values.revision, DEFAULT_SETTINGS.revision),
    nativeNftables: values['native-nftables'] ?? false,
    cni: values.cni ?? false,
    cniNetworkAttachment: attachment(values),
    mesh: { ...DEFAULT_SETTINGS.mesh, network: values.network === undefined ? '' : text('network', values.network, '') },
  };
  if (values.template !== undefined) {
    let body: string;
    try {
      body = readFileSync(values.template, 'utf8');
    } catch (error) {
      throw new ConfigError('--template', values.template, `cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, 'give a readable YAML file', '');
    }
    settings = { ...settings, template: parseTemplate(body, values.template) };
  }
  return settings;
}

export const injectCommand: Command = async (argv, ctx) => {
  try {
    const values = parseCommandArgs(argv, {
      filename: { type: 'string', short: 'f' },
      help: { type: 'boolean', short: 'h' },
      'print-template': { type: 'boolean' },
      ...SETTINGS_OPTIONS,
    });
    if (values.help) {
      ctx.stdout(INJECT_HELP);
      return ExitCode.Ok;
    }
    const settings = settingsFromOptions(values);
    if (values['print-template']) {
      ctx.stdout(renderTemplate(settings.template ?? defaultTemplate(settings)));
      return ExitCode.Ok;
    }
    const file = values.filename;
    if (file === undefined) throw new UsageError('missing -f FILE (use -f - to read stdin)');
    let text: string;
    if (file === '-') {
      text = (await ctx.readStdin()).toString('utf8');
    } else {
      try {
        text = readFileSync(file, 'utf8');
      } catch (error) {
        throw new ConfigError('-f', file, `cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, 'give a readable manifest file, or - for stdin', '');
      }
    }
    const result = injectManifests(text, settings);
    for (const warning of result.warnings) ctx.stderr(`meshcap inject: warning: ${warning}\n`);
    ctx.stdout(result.text);
    return ExitCode.Ok;
  } catch (error) {
    return reportError(error, ctx, 'inject');
  }
};
