/**
 * flags + environment + host facts -> CaptureConfig, validated once.
 * Precedence is Istio's: command line > additional env > primary env > default.
 * Pure: the environment and host facts are arguments.
 */
import { parseArgv, parseGoBool, ArgvError } from './argv.js';
import { CAPTURE_FLAGS, ENV_ONLY, type FlagKey, type FlagSpec, describeFlag, flagByKey } from './flags.js';
import type { CaptureConfig, HostFacts, InboundPorts, Ipv6Decision, OwnerGroups, BackendChoice } from './types.js';
import {
  type Parsed,
  parseCidrList,
  parseDnsServers,
  parseGoDuration,
  parseGroupList,
  parseIdList,
  parseInterfaceList,
  parseLoopbackCidr,
  parsePort,
  parsePortList,
  parsePortListOrAll,
  parseUint32,
  quote,
  splitList,
} from './values.js';
import { InvalidInputError, UsageError } from '../errors.js';
import { type Cidr, cidrIsLoopback, isLinkLocalUnicast, isLoopback, parseIp, unmap, formatIp } from '../net/ip.js';

export type Env = Readonly<Record<string, string | undefined>>;

/** A user mistake in the configuration: exit code 2, one line, no stack trace. */
export class ConfigError extends InvalidInputError {
  constructor(
    /** The flag or variable, e.g. `--envoy-port (-p)` or `env ISTIO_OUTBOUND_OWNER_GROUPS`. */
    readonly subject: string,
    readonly value: string,
    readonly problem: string,
    readonly allowed: string,
    /** "", "from the command line", "from env X". */
    readonly source: string,
  ) {
    const what = `invalid ${subject}${source ? ` ${source}` : ''}: ${quote(value)}`;
    super({ what, why: problem, fix: allowed }, `${what}: ${problem}; ${allowed}`);
    this.name = 'ConfigError';
  }
}

// UsageError lives with the other errors; re-exported for the config's callers.
export { UsageError } from '../errors.js';

export interface RawValue {
  readonly value: string | boolean;
  /** "" for the default, "from the command line", "from env X". */
  readonly source: string;
}

/** Resolve every flag to its effective raw value with Istio's precedence. */
export function resolveRaw(argv: readonly string[], env: Env): { raw: Map<FlagKey, RawValue>; positionals: string[] } {
  let parsed;
  try {
    parsed = parseArgv(argv, CAPTURE_FLAGS);
  } catch (error) {
    if (error instanceof ArgvError) throw new UsageError(error.message);
    throw error;
  }
  const raw = new Map<FlagKey, RawValue>();
  for (const spec of CAPTURE_FLAGS) {
    let resolved: RawValue = { value: spec.default, source: '' };
    for (const envName of [spec.env, spec.additionalEnv]) {
      if (!envName) continue;
      const text = env[envName];
      if (text === undefined) continue;
      if (spec.kind === 'bool') {
        // Istio ignores an empty or unparsable bool env var; an unparsable one is refused here
        // because silently ignoring REDIRECT_DNS=yes is how captures go missing.
        if (text === '') continue;
        const value = parseGoBool(text);
        if (value === undefined) {
          throw new ConfigError(describeFlag(spec), text, 'is not a boolean', 'use true or false', `from env ${envName}`);
        }
        resolved = { value, source: `from env ${envName}` };
      } else {
        resolved = { value: text, source: `from env ${envName}` };
      }
    }
    const fromCli = parsed.values.get(spec.key);
    if (fromCli !== undefined) resolved = { value: fromCli, source: 'from the command line' };
    raw.set(spec.key, resolved);
  }
  return { raw, positionals: [...parsed.positionals] };
}

/** Every capture flag's raw value, resolved from argv and env with Istio's precedence; the values not yet validated. */
export interface ResolvedFlags {
  readonly raw: ReadonlyMap<FlagKey, RawValue>;
}

/** resolveRaw for a capture, which takes only flags: a positional argument is a usage error. */
export function resolveCaptureFlags(argv: readonly string[], env: Env): ResolvedFlags {
  const { raw, positionals } = resolveRaw(argv, env);
  if (positionals.length > 0) {
    throw new UsageError(`unexpected argument ${quote(positionals[0]!)}: istio-iptables takes only flags`);
  }
  return { raw };
}

/**
 * What a capture is asked to do, known before its values are validated (CaptureConfig says the
 * same, later): enough to refuse the machine's own namespace and to start the first read.
 */
export interface CaptureIntent {
  /** It reads and writes the rules: not a dry run, not --skip-rule-apply. */
  readonly touchesRules: boolean;
  readonly nativeNftables: boolean;
  readonly cleanupOnly: boolean;
  readonly allowHostNetns: boolean;
  /** As given (for messages): not yet validated. */
  readonly proxyPort: string;
  /** The values are long (a list of thousands of excludes): the rules' writer is started ahead (EarlyWriter). */
  readonly longLists: boolean;
}

/** Characters of flag values from which on a capture counts as long (~1300 excluded CIDRs, ~40 KB of restore input). */
const LONG_VALUES = 16 * 1024;

export function captureIntent(flags: ResolvedFlags): CaptureIntent {
  const bool = (key: FlagKey) => flags.raw.get(key)?.value === true;
  return {
    touchesRules: !bool('dryRun') && !bool('skipRuleApply'),
    nativeNftables: bool('nativeNftables'),
    cleanupOnly: bool('cleanupOnly'),
    allowHostNetns: bool('allowHostNetns'),
    proxyPort: String(flags.raw.get('proxyPort')?.value ?? ''),
    longLists: valuesLength(flags) >= LONG_VALUES,
  };
}

function valuesLength(flags: ResolvedFlags): number {
  let length = 0;
  for (const { value } of flags.raw.values()) if (typeof value === 'string') length += value.length;
  return length;
}

/** Parse argv and env into a validated CaptureConfig, or throw ConfigError / UsageError. */
export function parseCaptureConfig(argv: readonly string[], env: Env, facts: HostFacts): CaptureConfig {
  return parseResolvedConfig(resolveCaptureFlags(argv, env), env, facts);
}

/** parseCaptureConfig for flags already resolved. */
/** IPv4 and IPv6 prefixes apart, in one pass (an exclude list may hold thousands). */
function byFamily(cidrs: readonly Cidr[]): { v4: Cidr[]; v6: Cidr[] } {
  const v4: Cidr[] = [];
  const v6: Cidr[] = [];
  for (const cidr of cidrs) (cidr.addr.family === 4 ? v4 : v6).push(cidr);
  return { v4, v6 };
}

export function parseResolvedConfig({ raw }: ResolvedFlags, env: Env, facts: HostFacts): CaptureConfig {

  const str = (key: FlagKey): string => String(raw.get(key)!.value);
  const bool = (key: FlagKey): boolean => raw.get(key)!.value === true;
  const isSet = (key: FlagKey): boolean => raw.get(key)!.source !== '';
  const take = <T>(key: FlagKey, result: Parsed<T>): T => {
    if (result.ok) return result.value;
    const spec = flagByKey(key);
    const entry = raw.get(key)!;
    throw new ConfigError(describeFlag(spec), String(entry.value), result.problem.problem, result.problem.allowed, entry.source);
  };
  const takeEnv = <T>(name: string, value: string, result: Parsed<T>): T => {
    if (result.ok) return result.value;
    throw new ConfigError(`env ${name}`, value, result.problem.problem, result.problem.allowed, '');
  };
  const port = (key: FlagKey) => take(key, parsePort(str(key)));

  const proxyPort = port('proxyPort');
  const inboundCapturePort = port('inboundCapturePort');
  const inboundTunnelPort = port('inboundTunnelPort');

  const proxyUids = proxyUidsWithDefault(take('proxyUid', parseIdList(str('proxyUid'))), env, facts);
  const givenGids = take('proxyGid', parseIdList(str('proxyGid')));
  const proxyGids = givenGids.length > 0 ? givenGids : proxyUids;

  const modeText = str('interceptionMode');
  const mode = take('interceptionMode', parseMode(modeText));

  const inboundInclude = take('inboundPorts', parsePortListOrAll(str('inboundPorts')));
  const inboundExclude = take('inboundPortsExclude', parsePortList(str('inboundPortsExclude')));
  const inboundPorts: InboundPorts =
    inboundInclude === '*'
      ? { kind: 'all', exclude: inboundExclude }
      : inboundInclude.length > 0
        ? { kind: 'list', ports: inboundInclude }
        : { kind: 'none' };

  const include = take('outboundCidrs', parseCidrList(str('outboundCidrs'), true));
  const exclude = take('outboundCidrsExclude', parseCidrList(str('outboundCidrsExclude'), false));

  const ownerIncludeText = env[ENV_ONLY.ownerGroupsInclude.env] ?? ENV_ONLY.ownerGroupsInclude.default;
  const ownerExcludeText = env[ENV_ONLY.ownerGroupsExclude.env] ?? ENV_ONLY.ownerGroupsExclude.default;
  const ownerGroups = parseOwnerGroups(ownerIncludeText, ownerExcludeText);

  const loopbackText = env[ENV_ONLY.loopbackCidr.env] ?? ENV_ONLY.loopbackCidr.default;
  const ipv4LoopbackCidr = takeEnv(ENV_ONLY.loopbackCidr.env, loopbackText, parseLoopbackCidr(loopbackText));

  const markAllowed = 'a packet mark is a number from 1 to 4294967295 (decimal or 0x hex)';
  const tproxyMark = take('tproxyMark', parseUint32(str('tproxyMark'), markAllowed));
  if (tproxyMark === 0) take('tproxyMark', { ok: false, problem: { problem: 'mark 0 matches unmarked packets', allowed: markAllowed } });
  const tableAllowed = 'a routing table is a number from 1 to 4294967295 other than 253 (default), 254 (main) and 255 (local)';
  const tproxyRouteTable = take('tproxyRouteTable', parseUint32(str('tproxyRouteTable'), tableAllowed));
  if (tproxyRouteTable === 0 || tproxyRouteTable >= 253 && tproxyRouteTable <= 255) {
    take('tproxyRouteTable', {
      ok: false,
      problem: { problem: `table ${tproxyRouteTable} is reserved by the kernel`, allowed: tableAllowed },
    });
  }

  const dualStack = bool('dualStack');
  const ipv6 = decideIpv6(take('ipv6', parseTriState(str('ipv6'))), dualStack, facts);

  const redirectDns = bool('redirectDns');
  const captureAllDns = bool('captureAllDns');
  let serversV4: string[] = [];
  let serversV6: string[] = [];
  if (redirectDns && !captureAllDns) {
    const fromResolv = isSet('dnsServersV4') && isSet('dnsServersV6') ? undefined : resolvConfServers(facts);
    serversV4 = isSet('dnsServersV4') ? take('dnsServersV4', parseDnsServers(str('dnsServersV4'), 4)) : fromResolv!.v4;
    serversV6 = isSet('dnsServersV6') ? take('dnsServersV6', parseDnsServers(str('dnsServersV6'), 6)) : fromResolv!.v6;
  } else {
    // Still validate explicit values so a typo is reported even when unused.
    take('dnsServersV4', parseDnsServers(str('dnsServersV4'), 4));
    take('dnsServersV6', parseDnsServers(str('dnsServersV6'), 6));
  }

  const { backend, pinnedBy: backendPinnedBy } = resolveBackend(raw, take);
  const lockTimeoutSeconds = take(
    'lockTimeout',
    parseBoundedInt(str('lockTimeout'), 86400, 'a whole number of seconds from 0 to 86400'),
  );
  const probeTimeoutMs = take('probeTimeout', parseGoDuration(str('probeTimeout')));
  const probePort = port('probePort');

  return {
    proxyPort,
    inboundCapturePort,
    inboundTunnelPort,
    proxyUids,
    proxyGids,
    mode,
    inboundPorts,
    excludeInterfaces: take('excludeInterfaces', parseInterfaceList(str('excludeInterfaces'))),
    rerouteInterfaces: take('rerouteInterfaces', parseInterfaceList(str('rerouteInterfaces'))),
    outboundCidrs: { wildcard: include.wildcard, ...byFamily(include.cidrs), hasLoopback: include.cidrs.some(cidrIsLoopback) },
    outboundCidrsExclude: byFamily(exclude.cidrs),
    outboundPorts: take('outboundPorts', parsePortList(str('outboundPorts'))),
    outboundPortsExclude: take('outboundPortsExclude', parsePortList(str('outboundPortsExclude'))),
    tproxyMark,
    tproxyRouteTable,
    ownerGroups,
    ipv4LoopbackCidr,
    dns: {
      requested: redirectDns,
      effective: redirectDns && (captureAllDns || serversV4.length > 0 || serversV6.length > 0),
      captureAll: captureAllDns,
      serversV4,
      serversV6,
    },
    dropInvalid: bool('dropInvalid'),
    dualStack,
    ipv6,
    dryRun: bool('dryRun'),
    dryRunFilePath: env[ENV_ONLY.dryRunFilePath.env] ?? '',
    skipRuleApply: bool('skipRuleApply'),
    // --verify is meshcap's name for Istio's --run-validation.
    runValidation: bool('runValidation') || bool('verify'),
    cleanupOnly: bool('cleanupOnly'),
    forceApply: bool('forceApply'),
    nativeNftables: bool('nativeNftables'),
    cidrSets: bool('cidrSets'),
    cniMode: bool('cniMode'),
    networkNamespace: str('networkNamespace'),
    backend,
    backendPinnedBy,
    lockTimeoutSeconds,
    allowHostNetns: bool('allowHostNetns'),
    probePort,
    probeTimeoutMs,
    logJson: bool('logAsJson'),
    debug: /(^|[,:])debug($|,)/.test(str('logOutputLevel')),
  };

  function parseOwnerGroups(includeText: string, excludeText: string): OwnerGroups {
    const includeEnv = ENV_ONLY.ownerGroupsInclude.env;
    if (includeText.trim() === '*') {
      return { kind: 'allExcept', groups: takeEnv(ENV_ONLY.ownerGroupsExclude.env, excludeText, parseGroupList(excludeText)) };
    }
    const groups = takeEnv(includeEnv, includeText, parseGroupList(includeText));
    const allowed = 'use * for all groups, or list the groups whose traffic is captured';
    if (groups.length === 0) {
      throw new ConfigError(`env ${includeEnv}`, includeText, 'is set but lists no group: that would turn off all outbound capture', allowed, '');
    }
    if (groups.length > 64) {
      throw new ConfigError(`env ${includeEnv}`, includeText, `lists ${groups.length} groups; at most 64 are allowed`, allowed, '');
    }
    if (splitList(excludeText).length > 0) {
      // Istio ignores the exclude list unless the include list is '*'; say so instead of surprising later.
      throw new ConfigError(
        `env ${ENV_ONLY.ownerGroupsExclude.env}`,
        excludeText,
        `only applies when ${includeEnv} is *`,
        `unset it, or set ${includeEnv}=*`,
        '',
      );
    }
    return { kind: 'only', groups };
  }
}

function parseMode(text: string): Parsed<'REDIRECT' | 'TPROXY'> {
  if (text === '' || text === 'REDIRECT') return { ok: true, value: 'REDIRECT' };
  if (text === 'TPROXY') return { ok: true, value: 'TPROXY' };
  const hint = /^(tproxy|redirect)$/i.test(text)
    ? ` (Istio matches case-sensitively and would silently use REDIRECT for ${quote(text)})`
    : ' (Istio would silently fall back to REDIRECT, which hides the mistake)';
  return {
    ok: false,
    problem: { problem: `unknown interception mode${hint}`, allowed: 'use REDIRECT, TPROXY, or leave it empty for REDIRECT' },
  };
}

function parseTriState(text: string): Parsed<'auto' | boolean> {
  if (text === 'auto') return { ok: true, value: 'auto' };
  const value = parseGoBool(text);
  if (value !== undefined) return { ok: true, value };
  return { ok: false, problem: { problem: 'is not auto, true or false', allowed: 'use auto, true or false' } };
}

function parseBoundedInt(text: string, max: number, allowed: string): Parsed<number> {
  if (!/^[0-9]{1,6}$/.test(text) || Number(text) > max) {
    return { ok: false, problem: { problem: 'is not a whole number in range', allowed } };
  }
  return { ok: true, value: Number(text) };
}

function proxyUidsWithDefault(given: string[], env: Env, facts: HostFacts): string[] {
  if (given.length > 0) return given;
  const user = env[ENV_ONLY.envoyUser.env] || ENV_ONLY.envoyUser.default;
  const uid = facts.lookupUid(user);
  return [String(uid ?? 1337)];
}

/** Istio's rule: the first usable address decides; with dual-stack, any IPv6 address enables IPv6. */
function decideIpv6(setting: 'auto' | boolean, dualStack: boolean, facts: HostFacts): Ipv6Decision {
  if (setting !== 'auto') return { enabled: setting, reason: `--ipv6=${setting}` };
  let firstUsable: string | undefined;
  for (const text of facts.interfaceAddresses()) {
    const parsed = parseIp(text.split('%')[0]!);
    if (!parsed) continue;
    const address = unmap(parsed);
    if (isLoopback(address) || isLinkLocalUnicast(address) || isLinkLocalMulticast(address)) continue;
    const shown = formatIp(address);
    if (!dualStack) {
      return address.family === 6
        ? { enabled: true, reason: `first address ${shown} is IPv6` }
        : { enabled: false, reason: `first address ${shown} is IPv4 (use --dual-stack or --ipv6=true for IPv6 rules)` };
    }
    firstUsable ??= shown;
    if (address.family === 6) return { enabled: true, reason: `dual-stack and ${shown} is IPv6` };
  }
  if (firstUsable) return { enabled: false, reason: 'dual-stack but no IPv6 address' };
  return { enabled: false, reason: 'no usable interface address (IPv6 off)' };
}

function isLinkLocalMulticast(address: { family: 4 | 6; bytes: readonly number[] }): boolean {
  if (address.family === 4) return address.bytes[0] === 224 && address.bytes[1] === 0 && address.bytes[2] === 0;
  return address.bytes[0] === 0xff && (address.bytes[1]! & 0x0f) === 0x02;
}

function resolvConfServers(facts: HostFacts): { v4: string[]; v6: string[] } {
  const text = facts.resolvConf();
  if (text === undefined) {
    throw new ConfigError(
      'DNS servers',
      '/etc/resolv.conf',
      'cannot be read, and DNS capture needs its nameservers',
      'give --dns-servers-v4 and --dns-servers-v6 explicitly, or use --capture-all-dns',
      '',
    );
  }
  const v4: string[] = [];
  const v6: string[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields[0] !== 'nameserver' || !fields[1]) continue;
    const address = parseIp(fields[1]);
    // Zone-scoped (fe80::1%eth0) and malformed entries cannot appear in a rule; skip them.
    if (!address) continue;
    // Istio keeps netip.Addr.String() of each nameserver (netutil.IPsSplitV4V6), not the text as written.
    (address.family === 4 ? v4 : v6).push(formatIp(address));
  }
  return { v4, v6 };
}

function resolveBackend(
  raw: ReadonlyMap<FlagKey, RawValue>,
  take: <T>(key: FlagKey, result: Parsed<T>) => T,
): { backend: BackendChoice; pinnedBy: string } {
  const backendText = String(raw.get('backend')!.value);
  const backend = take<BackendChoice>(
    'backend',
    backendText === 'auto' || backendText === 'legacy' || backendText === 'nft'
      ? { ok: true, value: backendText }
      : { ok: false, problem: { problem: 'is not a known backend', allowed: 'use auto, legacy or nft' } },
  );
  const forceText = String(raw.get('forceIptablesBinary')!.value);
  const forced = take<'' | 'legacy' | 'nft'>(
    'forceIptablesBinary',
    forceText === '' || forceText === 'legacy' || forceText === 'nft'
      ? { ok: true, value: forceText }
      : { ok: false, problem: { problem: 'is not a known backend', allowed: 'use legacy or nft (or leave it empty)' } },
  );
  if (backend !== 'auto' && forced !== '' && backend !== forced) {
    const spec: FlagSpec = flagByKey('backend');
    throw new ConfigError(
      describeFlag(spec),
      backend,
      `conflicts with FORCE_IPTABLES_BINARY=${forced}`,
      'give one backend choice, or make both agree',
      raw.get('backend')!.source,
    );
  }
  const chosen = backend !== 'auto' ? backend : forced || 'auto';
  return { backend: chosen, pinnedBy: forced !== '' ? `FORCE_IPTABLES_BINARY=${chosen}` : `--backend=${chosen}` };
}
