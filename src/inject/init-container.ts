/**
 * The istio-init container: the capture args derived from the annotations
 * (capture-args.ts), checked with the very parser istio-init will run so that
 * what it would refuse at pod start is refused now, naming the annotation. Pure
 * but for a bounded cache of the parser's verdicts.
 */
import { createHash } from 'node:crypto';
import { ConfigError, type Env, parseCaptureConfig } from '../config/parse.js';
import type { HostFacts } from '../config/types.js';
import { Annotation, type PodOptions } from './annotations.js';
import { captureArgs } from './capture-args.js';
import { type JsonObject, asObject, clone, deepFreeze } from './json.js';
import { type InjectSettings, initImage } from './settings.js';
import { INIT_NAME, VALIDATION_NAME } from './target.js';

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

/**
 * Istio's istio-validation (CNI layout): the same args plus --run-validation
 * --skip-rule-apply, run as the proxy's uid and gid (1337 under TPROXY, whose
 * proxy is root) with nothing added: it only proves that the plugin's capture
 * redirects, changing nothing.
 */
function validationSecurityContext(options: PodOptions, settings: InjectSettings, userProxy: JsonObject | undefined): JsonObject {
  const tproxy = options.mode === 'TPROXY';
  const user = asObject(userProxy?.securityContext);
  // Istio's fix-up: outside TPROXY the validation runs as the user's proxy uid and gid. Never as root:
  // runAsNonRoot would make the kubelet refuse the pod.
  const id = (value: unknown, fallback: number) => (!tproxy && typeof value === 'number' && value > 0 ? value : fallback);
  return {
    allowPrivilegeEscalation: false,
    capabilities: { drop: ['ALL'] },
    privileged: false,
    readOnlyRootFilesystem: true,
    runAsGroup: id(user?.runAsGroup, tproxy ? 1337 : settings.proxyGid),
    runAsNonRoot: true,
    runAsUser: id(user?.runAsUser, tproxy ? 1337 : settings.proxyUid),
  };
}

/** istio-init, or in the CNI layout (settings.cni) istio-validation. */
export function buildInit(options: PodOptions, settings: InjectSettings, userProxy: JsonObject | undefined, subject: string): JsonObject {
  const userUid = asObject(userProxy?.securityContext)?.runAsUser;
  const args = captureArgs(options, settings, typeof userUid === 'number' ? userUid : undefined);
  const problem = initProblem(args.slice(1), options.proxyMetadata);
  if (problem?.fromEnv) {
    // The parser names the env variable it refused (`from env X` or `env X`): that is the proxyMetadata key.
    const name = /\benv ([A-Za-z_][A-Za-z0-9_.-]*)/.exec(`${problem.source} ${problem.subject}`)?.[1];
    const entry = options.proxyMetadata.find(([key]) => key === name);
    throw new ConfigError(
      `annotation ${Annotation.proxyConfig} proxyMetadata`,
      entry ? `${entry[0]}: ${entry[1]}` : options.proxyMetadata.map(([key, value]) => `${key}: ${value}`).join(', '),
      `${problem.problem} (istio-init reads it for ${problem.subject})`,
      problem.allowed,
      `on ${subject}`,
    );
  }
  if (problem !== undefined) {
    throw new ConfigError('istio-init arguments derived from the annotations', args.slice(1).join(' '), problem.message, 'fix the traffic annotations', `on ${subject}`);
  }
  const init: JsonObject = { name: settings.cni ? VALIDATION_NAME : INIT_NAME, image: initImage(settings) };
  if (settings.initStyle === 'meshcap') init.command = ['meshcap'];
  init.args = settings.cni ? [...args, '--run-validation', '--skip-rule-apply'] : args;
  if (options.proxyMetadata.length > 0) init.env = options.proxyMetadata.map(([name, value]) => ({ name, value }));
  init.resources = clone(options.resources ?? settings.resources);
  init.securityContext = settings.cni ? validationSecurityContext(options, settings, userProxy) : INIT_SECURITY_CONTEXT;
  return init;
}
