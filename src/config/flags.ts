/**
 * Every flag `istio-iptables` accepts, with its environment variables and
 * default, plus meshcap's own options. One table drives parsing, env fallback,
 * validation messages and `--help`, so they cannot drift apart.
 */

export type FlagKind = 'string' | 'bool';

export interface FlagSpec<K extends string = string> {
  /** Key in the raw configuration. */
  readonly key: K;
  readonly long: string;
  readonly short?: string;
  readonly kind: FlagKind;
  /** Primary env var, read first. */
  readonly env?: string;
  /** Additional env var, read after the primary one and so overriding it (Istio's order). */
  readonly additionalEnv?: string;
  readonly default: string | boolean;
  readonly help: string;
  /** Accepted for compatibility; has no effect on the rules. */
  readonly compatOnly?: boolean;
  /** Shown under "meshcap options" in help. */
  readonly meshcap?: boolean;
  readonly valueName?: string;
}

const s = <const K extends string>(spec: Omit<FlagSpec<K>, 'kind'>): FlagSpec<K> => ({ ...spec, kind: 'string' });
const b = <const K extends string>(spec: Omit<FlagSpec<K>, 'kind' | 'default'> & { default?: boolean }): FlagSpec<K> => ({
  default: false,
  ...spec,
  kind: 'bool',
});

export const CAPTURE_FLAGS = [
  s({ key: 'proxyPort', long: 'envoy-port', short: 'p', default: '15001', valueName: 'PORT',
    help: 'Port the proxy listens on for captured outbound TCP.' }),
  s({ key: 'inboundCapturePort', long: 'inbound-capture-port', short: 'z', env: 'INBOUND_CAPTURE_PORT', default: '15006',
    valueName: 'PORT', help: 'Port inbound TCP is redirected (or TPROXY-ed) to.' }),
  s({ key: 'inboundTunnelPort', long: 'inbound-tunnel-port', short: 'e', env: 'INBOUND_TUNNEL_PORT', default: '15008',
    valueName: 'PORT', help: 'HBONE tunnel port; never captured.' }),
  s({ key: 'proxyUid', long: 'proxy-uid', short: 'u', env: 'PROXY_UID', default: '', valueName: 'UIDS',
    help: 'Comma list of UIDs whose traffic is not captured (default: uid of ENVOY_USER, else 1337).' }),
  s({ key: 'proxyGid', long: 'proxy-gid', short: 'g', env: 'PROXY_GID', default: '', valueName: 'GIDS',
    help: 'Comma list of GIDs whose traffic is not captured (default: the proxy UIDs).' }),
  s({ key: 'interceptionMode', long: 'istio-inbound-interception-mode', short: 'm', env: 'ISTIO_INBOUND_INTERCEPTION_MODE',
    default: '', valueName: 'MODE', help: 'Inbound capture mode: REDIRECT (default) or TPROXY.' }),
  s({ key: 'inboundPorts', long: 'istio-inbound-ports', short: 'b', env: 'ISTIO_INBOUND_PORTS', default: '',
    valueName: 'PORTS', help: 'Inbound ports to capture; * for all; empty for none.' }),
  s({ key: 'inboundPortsExclude', long: 'istio-local-exclude-ports', short: 'd', env: 'ISTIO_LOCAL_EXCLUDE_PORTS',
    default: '', valueName: 'PORTS', help: 'Inbound ports never captured (applies with -b *).' }),
  s({ key: 'excludeInterfaces', long: 'istio-exclude-interfaces', short: 'c', env: 'ISTIO_EXCLUDE_INTERFACES',
    default: '', valueName: 'NICS', help: 'Interfaces whose traffic is never captured.' }),
  s({ key: 'outboundCidrs', long: 'istio-service-cidr', short: 'i', env: 'ISTIO_SERVICE_CIDR', default: '',
    valueName: 'CIDRS', help: 'Outbound CIDRs to capture; * for all; empty for none.' }),
  s({ key: 'outboundCidrsExclude', long: 'istio-service-exclude-cidr', short: 'x', env: 'ISTIO_SERVICE_EXCLUDE_CIDR',
    default: '', valueName: 'CIDRS', help: 'Outbound CIDRs never captured.' }),
  s({ key: 'outboundPorts', long: 'istio-outbound-ports', short: 'q', env: 'ISTIO_OUTBOUND_PORTS', default: '',
    valueName: 'PORTS', help: 'Outbound TCP ports always captured, whatever the destination.' }),
  s({ key: 'outboundPortsExclude', long: 'istio-local-outbound-ports-exclude', short: 'o',
    env: 'ISTIO_LOCAL_OUTBOUND_PORTS_EXCLUDE', default: '', valueName: 'PORTS',
    help: 'Outbound TCP and UDP ports never captured.' }),
  s({ key: 'rerouteInterfaces', long: 'kube-virt-interfaces', short: 'k', env: 'KUBE_VIRT_INTERFACES', default: '',
    valueName: 'NICS', help: 'Interfaces whose inbound traffic is treated as outbound (KubeVirt).' }),
  s({ key: 'tproxyMark', long: 'istio-inbound-tproxy-mark', short: 't', env: 'ISTIO_INBOUND_TPROXY_MARK',
    default: '1337', valueName: 'MARK', help: 'Packet mark used in TPROXY mode.' }),
  s({ key: 'tproxyRouteTable', long: 'istio-inbound-tproxy-route-table', short: 'r',
    env: 'ISTIO_INBOUND_TPROXY_ROUTE_TABLE', default: '133', valueName: 'TABLE',
    help: 'Policy-routing table used in TPROXY mode.' }),
  b({ key: 'dryRun', long: 'dry-run', short: 'n', env: 'DRY_RUN',
    help: 'Print what would be run (Istio trace format) and change nothing.' }),
  s({ key: 'probePort', long: 'iptables-probe-port', env: 'IPTABLES_PROBE_PORT', default: '15002', valueName: 'PORT',
    help: 'Original destination port the validation probe connects to.' }),
  s({ key: 'probeTimeout', long: 'probe-timeout', env: 'PROBE_TIMEOUT', default: '5s', valueName: 'DURATION',
    help: 'Validation probe timeout (Go duration, e.g. 5s, 500ms).' }),
  b({ key: 'skipRuleApply', long: 'skip-rule-apply', env: 'SKIP_RULE_APPLY', help: 'Do not change rules or routes.' }),
  b({ key: 'runValidation', long: 'run-validation', env: 'RUN_VALIDATION',
    help: 'Prove the capture with a real connection after applying.' }),
  b({ key: 'redirectDns', long: 'redirect-dns', env: 'REDIRECT_DNS', additionalEnv: 'ISTIO_META_DNS_CAPTURE',
    help: 'Capture DNS to the agent on 15053.' }),
  b({ key: 'dropInvalid', long: 'drop-invalid', env: 'DROP_INVALID', additionalEnv: 'INVALID_DROP',
    help: 'Drop conntrack-INVALID packets.' }),
  b({ key: 'dualStack', long: 'dual-stack', env: 'DUAL_STACK', additionalEnv: 'ISTIO_DUAL_STACK',
    help: 'Enable IPv6 rules when any interface has an IPv6 address.' }),
  b({ key: 'captureAllDns', long: 'capture-all-dns', env: 'CAPTURE_ALL_DNS',
    help: 'Capture all port-53 traffic, not only to resolv.conf servers.' }),
  s({ key: 'networkNamespace', long: 'network-namespace', env: 'NETWORK_NAMESPACE', default: '', valueName: 'PATH',
    help: 'Network namespace path (CNI mode).' }),
  b({ key: 'cniMode', long: 'cni-mode', env: 'CNI_MODE', help: 'Running on the host filesystem with a pod network.' }),
  b({ key: 'reconcile', long: 'reconcile', env: 'RECONCILE',
    help: 'Accepted for compatibility: meshcap always reconciles.', compatOnly: true }),
  b({ key: 'cleanupOnly', long: 'cleanup-only', env: 'CLEANUP_ONLY', help: 'Remove the capture instead of applying it.' }),
  b({ key: 'forceApply', long: 'force-apply', env: 'FORCE_APPLY',
    help: 'Apply even when the live rules already match.' }),
  b({ key: 'nativeNftables', long: 'native-nftables', env: 'NATIVE_NFTABLES',
    help: 'Use native nftables (inet istio-proxy-* tables) instead of iptables.' }),
  s({ key: 'forceIptablesBinary', long: 'force-iptables-binary', env: 'FORCE_IPTABLES_BINARY', default: '',
    valueName: 'legacy|nft', help: "Istio's backend override; same as --backend." }),

  s({ key: 'ipv6', long: 'ipv6', env: 'MESHCAP_IPV6', default: 'auto', valueName: 'auto|true|false', meshcap: true,
    help: 'IPv6 rules: auto-detect from interface addresses as Istio does, or force on/off.' }),
  s({ key: 'dnsServersV4', long: 'dns-servers-v4', env: 'MESHCAP_DNS_SERVERS_V4', default: '', valueName: 'IPS',
    meshcap: true, help: 'IPv4 DNS servers to capture (default: resolv.conf nameservers; empty: none).' }),
  s({ key: 'dnsServersV6', long: 'dns-servers-v6', env: 'MESHCAP_DNS_SERVERS_V6', default: '', valueName: 'IPS',
    meshcap: true, help: 'IPv6 DNS servers to capture (default: resolv.conf nameservers; empty: none).' }),
  s({ key: 'backend', long: 'backend', env: 'MESHCAP_BACKEND', default: 'auto', valueName: 'auto|legacy|nft',
    meshcap: true, help: 'iptables backend; auto detects without side effects.' }),
  b({ key: 'verify', long: 'verify', env: 'MESHCAP_VERIFY', meshcap: true,
    help: 'After applying, check the rules and prove the capture with real connections (as --run-validation).' }),
  b({ key: 'cidrSets', long: 'cidr-sets', env: 'MESHCAP_CIDR_SETS', meshcap: true,
    help: 'Native nftables: write the -x CIDRs and -o ports as nftables sets, one lookup per connection instead of a rule per entry (not Istio\'s layout; the iptables backends keep a rule per entry).' }),
  s({ key: 'lockTimeout', long: 'lock-timeout', env: 'MESHCAP_LOCK_TIMEOUT', default: '30', valueName: 'SECONDS',
    meshcap: true, help: 'How long to wait for the xtables lock.' }),
  b({ key: 'allowHostNetns', long: 'allow-host-netns', env: 'MESHCAP_ALLOW_HOST_NETNS', meshcap: true,
    help: "Capture even in the machine's own network namespace (istio-iptables on a VM); refused otherwise." }),

  // pilot-agent's logging flags: accepted so istio-init command lines work unchanged.
  s({ key: 'logOutputLevel', long: 'log_output_level', default: '', valueName: 'LEVELS', compatOnly: true,
    help: 'Logging level (scope:level,...); "debug" anywhere enables debug logs.' }),
  b({ key: 'logAsJson', long: 'log_as_json', help: 'Log as JSON lines on stderr.' }),
  s({ key: 'logCaller', long: 'log_caller', default: '', compatOnly: true, help: 'Accepted for compatibility.' }),
  s({ key: 'logStacktraceLevel', long: 'log_stacktrace_level', default: '', compatOnly: true,
    help: 'Accepted for compatibility.' }),
  s({ key: 'logTarget', long: 'log_target', default: '', compatOnly: true, help: 'Accepted for compatibility.' }),
  s({ key: 'logRotate', long: 'log_rotate', default: '', compatOnly: true, help: 'Accepted for compatibility.' }),
  s({ key: 'logRotateMaxAge', long: 'log_rotate_max_age', default: '', compatOnly: true,
    help: 'Accepted for compatibility.' }),
  s({ key: 'logRotateMaxSize', long: 'log_rotate_max_size', default: '', compatOnly: true,
    help: 'Accepted for compatibility.' }),
  s({ key: 'logRotateMaxBackups', long: 'log_rotate_max_backups', default: '', compatOnly: true,
    help: 'Accepted for compatibility.' }),
  s({ key: 'vklog', long: 'vklog', default: '', compatOnly: true, help: 'Accepted for compatibility.' }),
] as const;

/** The key of a capture flag: `str('proxyPrt')` is a compile error, not a run-time one. */
export type FlagKey = (typeof CAPTURE_FLAGS)[number]['key'];

/** Inputs that only exist as environment variables (Istio registers no flag for them). */
export const ENV_ONLY = {
  ownerGroupsInclude: { env: 'ISTIO_OUTBOUND_OWNER_GROUPS', default: '*' },
  ownerGroupsExclude: { env: 'ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE', default: '' },
  loopbackCidr: { env: 'ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR', default: '127.0.0.1/32' },
  envoyUser: { env: 'ENVOY_USER', default: 'istio-proxy' },
  dryRunFilePath: { env: 'DRY_RUN_FILE_PATH', default: '' },
} as const;

export function flagByKey(key: FlagKey): FlagSpec<FlagKey> {
  return CAPTURE_FLAGS.find((f) => f.key === key)!;
}

/** "--istio-inbound-ports (-b, env ISTIO_INBOUND_PORTS)" for messages. */
export function describeFlag(spec: FlagSpec): string {
  const extras: string[] = [];
  if (spec.short) extras.push(`-${spec.short}`);
  const envs = [spec.env, spec.additionalEnv].filter((e): e is string => Boolean(e));
  if (envs.length > 0) extras.push(`env ${envs.join(' or ')}`);
  return extras.length > 0 ? `--${spec.long} (${extras.join(', ')})` : `--${spec.long}`;
}
