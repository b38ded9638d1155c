/**
 * The validated capture configuration. Every value here has been parsed once
 * (ports are numbers in range, CIDRs are real prefixes, names are in a safe
 * charset); nothing downstream re-validates.
 */
import type { Cidr } from '../net/ip.js';

export type InterceptionMode = 'REDIRECT' | 'TPROXY';
export type BackendChoice = 'auto' | 'legacy' | 'nft';

export type InboundPorts =
  | { readonly kind: 'none' }
  | { readonly kind: 'all'; readonly exclude: readonly number[] }
  | { readonly kind: 'list'; readonly ports: readonly number[] };

export interface OutboundCidrs {
  /** `*` was given: capture every destination. */
  readonly wildcard: boolean;
  readonly v4: readonly Cidr[];
  readonly v6: readonly Cidr[];
  /** A loopback prefix is in the include list (Istio's HasLoopBackIP). */
  readonly hasLoopback: boolean;
}

export type OwnerGroups =
  /** Capture every group except these (include list is `*`). */
  | { readonly kind: 'allExcept'; readonly groups: readonly string[] }
  /** Capture only these groups. */
  | { readonly kind: 'only'; readonly groups: readonly string[] };

export interface Ipv6Decision {
  readonly enabled: boolean;
  /** Why: "--ipv6=true", "first address 198.18.0.2 is IPv4", ... */
  readonly reason: string;
}

export interface DnsCapture {
  /** DNS capture asked for (--redirect-dns or ISTIO_META_DNS_CAPTURE). */
  readonly requested: boolean;
  /** requested AND (capture-all OR some server): Istio turns it off otherwise. */
  readonly effective: boolean;
  readonly captureAll: boolean;
  /**
   * Server addresses, printed with /32 or /128: explicit --dns-servers-v4/-v6 values as written (as Istio's
   * tests inject them), resolv.conf nameservers in netip form (as Istio's IPsSplitV4V6 keeps them).
   */
  readonly serversV4: readonly string[];
  readonly serversV6: readonly string[];
}

/**
 * What the rules are built from: everything buildRuleset, preflight's kernel
 * check, explain and the simulator read. Two configurations with equal
 * CaptureSpecs write the same rules.
 */
export interface CaptureSpec {
  /** Native nftables writes runs of excluded CIDRs and ports as sets (--cidr-sets); iptables ignores it. */
  readonly cidrSets: boolean;
  readonly proxyPort: number;
  readonly inboundCapturePort: number;
  readonly inboundTunnelPort: number;
  /** Numeric ids, as decimal strings in the order given. */
  readonly proxyUids: readonly string[];
  readonly proxyGids: readonly string[];
  readonly mode: InterceptionMode;
  readonly inboundPorts: InboundPorts;
  readonly excludeInterfaces: readonly string[];
  readonly rerouteInterfaces: readonly string[];
  readonly outboundCidrs: OutboundCidrs;
  readonly outboundCidrsExclude: { readonly v4: readonly Cidr[]; readonly v6: readonly Cidr[] };
  readonly outboundPorts: readonly number[];
  readonly outboundPortsExclude: readonly number[];
  readonly tproxyMark: number;
  /** Read by the TPROXY policy routing, not by the rules. */
  readonly tproxyRouteTable: number;
  readonly ownerGroups: OwnerGroups;
  /** ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR, printed verbatim as Istio does. */
  readonly ipv4LoopbackCidr: string;
  readonly dns: DnsCapture;
  readonly dropInvalid: boolean;
  readonly dualStack: boolean;
  readonly ipv6: Ipv6Decision;
}

/** How to run: what to do with the rules, where, and with which backend. */
export interface RunSettings {
  readonly dryRun: boolean;
  readonly dryRunFilePath: string;
  readonly skipRuleApply: boolean;
  readonly runValidation: boolean;
  readonly cleanupOnly: boolean;
  readonly forceApply: boolean;
  readonly nativeNftables: boolean;
  readonly cniMode: boolean;
  readonly networkNamespace: string;
  readonly backend: BackendChoice;
  /** Who pinned the backend, for messages: `--backend=nft` or `FORCE_IPTABLES_BINARY=nft`. */
  readonly backendPinnedBy: string;
  readonly lockTimeoutSeconds: number;
  /** Capture even in what is evidently the machine's own network namespace (an Istio VM). */
  readonly allowHostNetns: boolean;
}

/** The validation probe (--run-validation, meshcap verify). */
export interface ProbeSettings {
  readonly probePort: number;
  readonly probeTimeoutMs: number;
}

export interface LogSettings {
  readonly logJson: boolean;
  readonly debug: boolean;
}

/**
 * One parsed istio-iptables command line. Kept flat (fields are read as
 * config.proxyPort everywhere) and split by type: a function that takes a
 * CaptureSpec shows that only the rule inputs decide its output.
 */
export interface CaptureConfig extends CaptureSpec, RunSettings, ProbeSettings, LogSettings {}

/**
 * Facts about the namespace that Istio derives configuration from. Supplied by
 * the imperative shell (or by tests), so parsing itself stays pure.
 */
export interface HostFacts {
  /** Interface addresses in kernel order, as text (IPv4 before IPv6 as getifaddrs lists them). */
  interfaceAddresses(): readonly string[];
  /** /etc/resolv.conf content, or undefined when it cannot be read. */
  resolvConf(): string | undefined;
  /** A user's uid from the user database, for ENVOY_USER. */
  lookupUid(name: string): number | undefined;
}

/** Host facts that supply nothing: for configurations that name everything themselves (derived flags, tests). */
export const NO_HOST_FACTS: HostFacts = { interfaceAddresses: () => [], resolvConf: () => '', lookupUid: () => undefined };
