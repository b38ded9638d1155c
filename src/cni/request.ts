/**
 * One CNI invocation, parsed from the environment and stdin (pure). Plugin
 * fields are read from meshcap-cni's own entry only; unknown ones are
 * reported as warnings, never errors (a newer installer may add fields).
 */
import { CniCode, CniError, compareVersions, details, isSupported, parseCniArgs, SUPPORTED_VERSIONS, ANNOTATIONS_CAPABILITY } from './spec.js';

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'VERSION' | 'STATUS' | 'GC';
const COMMANDS: readonly CniCommand[] = ['ADD', 'DEL', 'CHECK', 'VERSION', 'STATUS', 'GC'];

export interface PluginSettings {
  /** Where per-attachment state (xtables lock files) lives on the host. */
  readonly stateDir: string;
  /** Written by the agent; used only when the runtime passes no annotations. */
  readonly kubeconfig: string;
  readonly excludeNamespaces: readonly string[];
  /** How long the API lookup may retry before ADD answers 11 (try again later). */
  readonly apiTimeoutSeconds: number;
  /** STATUS answers 50 when ADD could not be served (off by default: a runtime may mark the whole node NotReady). */
  readonly statusGate: boolean;
  /** The agent's own pods (namespace/name prefix), let through when the API cannot be asked (no deadlock on its kubeconfig). */
  readonly agentNamespace: string;
  readonly agentPodPrefix: string;
  readonly debug: boolean;
}

export const DEFAULT_PLUGIN_SETTINGS: PluginSettings = {
  stateDir: '/run/meshcap-cni',
  kubeconfig: '/var/run/meshcap-cni/kubeconfig',
  excludeNamespaces: ['kube-system'],
  apiTimeoutSeconds: 30,
  statusGate: false,
  agentNamespace: 'meshcap-system',
  agentPodPrefix: 'meshcap-cni-node-',
  debug: false,
};

const STANDARD_FIELDS = new Set(['cniVersion', 'cniVersions', 'name', 'type', 'capabilities', 'runtimeConfig', 'prevResult', 'args', 'ipMasq', 'ipam', 'dns', 'disableCheck', 'disableGC', 'cni.dev/valid-attachments', 'cni.dev/attachments']);

export interface PodRef {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string | undefined;
  readonly infraContainerId: string | undefined;
}

export interface CniRequest {
  readonly command: CniCommand;
  readonly cniVersion: string;
  readonly containerId: string;
  readonly netns: string;
  readonly ifname: string;
  readonly pod: PodRef | undefined;
  readonly prevResult: Record<string, unknown> | undefined;
  /** undefined: the runtime passed none (capability not supported, or Multus). */
  readonly annotations: Readonly<Record<string, string>> | undefined;
  readonly settings: PluginSettings;
  readonly validAttachments: readonly { containerID: string; ifname: string }[];
  readonly warnings: readonly string[];
}

type Env = Readonly<Record<string, string | undefined>>;

export function parseCommand(env: Env): CniCommand {
  const command = env.CNI_COMMAND ?? '';
  if (!(COMMANDS as readonly string[]).includes(command)) {
    throw new CniError(CniCode.InvalidEnv, `unknown CNI_COMMAND ${JSON.stringify(command)}`, details('the runtime or a person ran meshcap-cni with a command the CNI spec does not define', `use one of ${COMMANDS.join(', ')}`));
  }
  return command as CniCommand;
}

function parseConfig(stdin: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(stdin);
  } catch (error) {
    throw new CniError(CniCode.Decode, 'the network configuration on stdin is not JSON', details((error as Error).message, 'check the conflist in the CNI conf dir (meshcap cni install writes a valid one)'));
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CniError(CniCode.Decode, 'the network configuration on stdin is not a JSON object', details(`got ${Array.isArray(value) ? 'an array' : typeof value}`, 'check the conflist in the CNI conf dir'));
  }
  return value as Record<string, unknown>;
}

function readSettings(config: Record<string, unknown>, warnings: string[]): PluginSettings {
  const s: { -readonly [K in keyof PluginSettings]: PluginSettings[K] } = { ...DEFAULT_PLUGIN_SETTINGS };
  const bad = (key: string, want: string) => {
    throw new CniError(CniCode.InvalidConfig, `meshcap-cni's entry has an invalid ${key}`, details(`${JSON.stringify(config[key])} is not ${want}`, `fix ${key} in the meshcap-cni entry of the conflist, or re-run 'meshcap cni install'`));
  };
  for (const [key, value] of Object.entries(config)) {
    if (STANDARD_FIELDS.has(key)) continue;
    switch (key) {
      case 'stateDir':
      case 'kubeconfig':
      case 'agentNamespace':
      case 'agentPodPrefix':
        if (typeof value !== 'string' || value === '') bad(key, 'a non-empty string');
        s[key] = value as string;
        break;
      case 'excludeNamespaces':
        if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) bad(key, 'a list of namespace names');
        s.excludeNamespaces = value as string[];
        break;
      case 'apiTimeoutSeconds':
        if (typeof value !== 'number' || !(value >= 0 && value <= 600)) bad(key, 'a number of seconds from 0 to 600');
        s.apiTimeoutSeconds = value as number;
        break;
      case 'statusGate':
      case 'debug':
        if (typeof value !== 'boolean') bad(key, 'true or false');
        s[key] = value as boolean;
        break;
      default:
        warnings.push(`ignoring unknown field ${JSON.stringify(key)} in meshcap-cni's entry`);
    }
  }
  return s;
}

function readAnnotations(config: Record<string, unknown>): Record<string, string> | undefined {
  const runtime = config.runtimeConfig;
  if (typeof runtime !== 'object' || runtime === null) return undefined;
  const raw = (runtime as Record<string, unknown>)[ANNOTATIONS_CAPABILITY];
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined;
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(raw)) if (typeof value === 'string') out[key] = value;
  return out;
}

export function parseRequest(env: Env, stdin: string): CniRequest {
  const command = parseCommand(env);
  const warnings: string[] = [];
  const config = parseConfig(stdin === '' && command === 'VERSION' ? '{}' : stdin);
  const cniVersion = typeof config.cniVersion === 'string' ? config.cniVersion : '0.3.1';
  if (command !== 'VERSION' && !isSupported(cniVersion)) {
    throw new CniError(CniCode.IncompatibleVersion, `meshcap-cni does not support cniVersion ${JSON.stringify(cniVersion)}`, details(`it supports ${SUPPORTED_VERSIONS.join(', ')}`, 'set the conflist cniVersion to one of those'));
  }
  if (command === 'CHECK' && compareVersions(cniVersion, '0.4.0') < 0) {
    throw new CniError(CniCode.IncompatibleVersion, 'config version does not allow CHECK', details(`cniVersion ${cniVersion} predates CHECK (0.4.0)`, 'raise the conflist cniVersion to 0.4.0 or later'));
  }
  const settings = command === 'VERSION' ? DEFAULT_PLUGIN_SETTINGS : readSettings(config, warnings);
  const needsEnv: Record<CniCommand, readonly string[]> = {
    ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
    CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
    DEL: [],
    VERSION: [],
    STATUS: [],
    GC: [],
  };
  for (const name of needsEnv[command]) {
    if (!env[name]) throw new CniError(CniCode.InvalidEnv, `${name} is not set`, details(`the runtime must set ${name} for ${command}`, 'this is a runtime bug or a hand-made call: set it'));
  }
  const args = parseCniArgs(env.CNI_ARGS ?? '');
  const known = new Set(['IgnoreUnknown', 'K8S_POD_NAMESPACE', 'K8S_POD_NAME', 'K8S_POD_INFRA_CONTAINER_ID', 'K8S_POD_UID']);
  const unknown = [...args.values.keys()].filter((key) => !known.has(key));
  if (unknown.length > 0 && !args.ignoreUnknown && command !== 'DEL') {
    throw new CniError(CniCode.InvalidEnv, `unknown CNI_ARGS key ${unknown[0]}`, details('CNI_ARGS has keys meshcap-cni does not know, and no IgnoreUnknown=1', 'add IgnoreUnknown=1 to CNI_ARGS (runtimes do)'));
  }
  if (args.malformed.length > 0) warnings.push(`ignoring malformed CNI_ARGS part ${JSON.stringify(args.malformed[0])}`);
  const namespace = args.values.get('K8S_POD_NAMESPACE');
  const name = args.values.get('K8S_POD_NAME');
  const pod = namespace && name ? { namespace, name, uid: args.values.get('K8S_POD_UID') || undefined, infraContainerId: args.values.get('K8S_POD_INFRA_CONTAINER_ID') || undefined } : undefined;
  const prev = config.prevResult;
  const valid = Array.isArray(config['cni.dev/valid-attachments']) ? (config['cni.dev/valid-attachments'] as { containerID: string; ifname: string }[]) : [];
  return {
    command,
    cniVersion,
    containerId: env.CNI_CONTAINERID ?? '',
    netns: env.CNI_NETNS ?? '',
    ifname: env.CNI_IFNAME ?? '',
    pod,
    prevResult: typeof prev === 'object' && prev !== null && !Array.isArray(prev) ? (prev as Record<string, unknown>) : undefined,
    annotations: readAnnotations(config),
    settings,
    validAttachments: valid.filter((a) => typeof a?.containerID === 'string'),
    warnings,
  };
}
