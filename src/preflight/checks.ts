/**
 * What the kernel and the process must offer for a config, decided from files
 * alone (no probe rules, no tables primed). Pure functions over text the shell
 * reads: /proc/self/status, /proc/net/ip_tables_*, the kernel config, module lists.
 */
import type { CaptureSpec } from '../config/types.js';

export const CAP_NET_ADMIN = 12;
export const CAP_NET_RAW = 13;

/** Effective capabilities from /proc/self/status (`CapEff: 000001ffffffffff`). */
export function effectiveCapabilities(status: string): bigint | undefined {
  const match = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  return match ? BigInt(`0x${match[1]}`) : undefined;
}

export function hasCapability(caps: bigint, bit: number): boolean {
  return (caps & (1n << BigInt(bit))) !== 0n;
}

/** What writes the rules: an iptables variant, or native nftables. */
export type RuleWriter = 'legacy' | 'nft' | 'nftables';

/**
 * The capabilities each writer really needs, as measured with setpriv in a
 * network namespace (iptables 1.8.9, nftables 1.0.6): everything speaks
 * netlink or setsockopt under CAP_NET_ADMIN; iptables-legacy also opens a raw
 * socket (CAP_NET_RAW) to reach the tables, and without it fails with a
 * misleading "unable to initialize table 'nat'". Undefined: not chosen yet,
 * so only what every writer needs.
 */
export function capabilitiesNeeded(writer: RuleWriter | undefined): { name: string; bit: number }[] {
  const needs = [{ name: 'CAP_NET_ADMIN', bit: CAP_NET_ADMIN }];
  if (writer === 'legacy') needs.push({ name: 'CAP_NET_RAW', bit: CAP_NET_RAW });
  return needs;
}

export function missingCapabilities(caps: bigint, writer: RuleWriter | undefined): string[] {
  return capabilitiesNeeded(writer).filter((need) => !hasCapability(caps, need.bit)).map((need) => need.name);
}

export interface KernelNeed {
  /** What the config needs it for, in words. */
  readonly why: string;
  /** xtables extension name as listed in /proc/net/ip_tables_{matches,targets}. */
  readonly extension?: string;
  readonly kind: 'table' | 'match' | 'target';
  /** iptables table name, for kind 'table'. */
  readonly table?: string;
  /** Kernel config options, any of which provides it (built-in or module). */
  readonly configs: readonly string[];
  /** Module that provides it, for the fix. */
  readonly module: string;
}

/** The tables, matches and targets a config's rules use. */
export function kernelNeeds(config: CaptureSpec): KernelNeed[] {
  const needs: KernelNeed[] = [
    { kind: 'table', table: 'nat', why: 'the nat table holds the redirects', configs: ['IP_NF_NAT', 'NFT_NAT'], module: 'iptable_nat' },
    { kind: 'target', extension: 'REDIRECT', why: 'redirecting to the proxy', configs: ['NETFILTER_XT_TARGET_REDIRECT', 'IP_NF_TARGET_REDIRECT'], module: 'xt_REDIRECT' },
    { kind: 'match', extension: 'owner', why: "exempting the proxy's own traffic by uid/gid", configs: ['NETFILTER_XT_MATCH_OWNER'], module: 'xt_owner' },
    { kind: 'match', extension: 'tcp', why: 'matching TCP ports', configs: ['NETFILTER_XTABLES', 'IP_NF_IPTABLES'], module: 'x_tables' },
  ];
  const dnsOn = config.dns.effective;
  if (dnsOn) {
    needs.push(
      { kind: 'table', table: 'raw', why: 'DNS capture uses conntrack zones in the raw table', configs: ['IP_NF_RAW'], module: 'iptable_raw' },
      { kind: 'target', extension: 'CT', why: 'DNS conntrack zones', configs: ['NETFILTER_XT_TARGET_CT'], module: 'xt_CT' },
      { kind: 'match', extension: 'multiport', why: 'exempting DNS from the loopback rules', configs: ['NETFILTER_XT_MATCH_MULTIPORT'], module: 'xt_multiport' },
    );
  }
  if (config.mode === 'TPROXY' || config.dropInvalid) {
    needs.push(
      { kind: 'table', table: 'mangle', why: config.mode === 'TPROXY' ? 'TPROXY works in the mangle table' : '--drop-invalid uses the mangle table', configs: ['IP_NF_MANGLE'], module: 'iptable_mangle' },
      { kind: 'match', extension: 'conntrack', why: 'matching connection state', configs: ['NETFILTER_XT_MATCH_CONNTRACK'], module: 'xt_conntrack' },
    );
  }
  if (config.mode === 'TPROXY') {
    needs.push(
      { kind: 'target', extension: 'TPROXY', why: 'TPROXY inbound capture', configs: ['NETFILTER_XT_TARGET_TPROXY'], module: 'xt_TPROXY' },
      { kind: 'target', extension: 'MARK', why: 'marking TPROXY packets', configs: ['NETFILTER_XT_MARK', 'NETFILTER_XT_TARGET_MARK'], module: 'xt_mark' },
      { kind: 'target', extension: 'CONNMARK', why: 'keeping the TPROXY mark on the connection', configs: ['NETFILTER_XT_CONNMARK', 'NETFILTER_XT_TARGET_CONNMARK'], module: 'xt_connmark' },
      { kind: 'match', extension: 'mark', why: 'matching the TPROXY mark', configs: ['NETFILTER_XT_MARK', 'NETFILTER_XT_MATCH_MARK'], module: 'xt_mark' },
      { kind: 'match', extension: 'connmark', why: 'matching the connection mark', configs: ['NETFILTER_XT_CONNMARK', 'NETFILTER_XT_MATCH_CONNMARK'], module: 'xt_connmark' },
    );
  }
  return needs;
}

export interface KernelFacts {
  /** Kernel build config text (from /proc/config.gz or /boot/config-*), when readable; read only when needed. */
  readonly kernelConfig?: () => string | undefined;
  /** Has the kernel config already been read (so asking for it costs nothing)? */
  readonly kernelConfigRead?: () => boolean;
  /** /proc/net/ip_tables_{matches,targets} (currently loaded extensions). */
  readonly loadedMatches?: string;
  readonly loadedTargets?: string;
  /** modules.builtin and modules.dep of the running kernel, when the host's /lib/modules is visible. */
  readonly modulesBuiltin?: string;
  readonly modulesDep?: string;
}

export type Support = 'yes' | 'no' | 'unknown';

/** Is one need met? "no" only when the evidence is conclusive (the kernel config says not set). */
export function supports(need: KernelNeed, facts: KernelFacts): Support {
  const loaded = need.kind === 'match' ? facts.loadedMatches : need.kind === 'target' ? facts.loadedTargets : undefined;
  if (need.extension && loaded?.split('\n').some((line) => line.trim() === need.extension)) return 'yes';
  // A table is only provable from the kernel config; it alone is not worth decompressing that.
  const kernelConfig = need.kind === 'table' && !facts.kernelConfigRead?.() ? undefined : facts.kernelConfig?.();
  if (kernelConfig) {
    const set = need.configs.some((option) => new RegExp(`^CONFIG_${option}=[ym]$`, 'm').test(kernelConfig));
    return set ? 'yes' : 'no';
  }
  const moduleFile = `${need.module}.ko`;
  if (facts.modulesBuiltin?.includes(`/${moduleFile}`) || facts.modulesDep?.includes(`/${moduleFile}`)) return 'yes';
  return 'unknown';
}

export interface KernelReport {
  readonly missing: readonly KernelNeed[];
  readonly unknown: readonly KernelNeed[];
}

export function checkKernel(config: CaptureSpec, facts: KernelFacts): KernelReport {
  const verdicts = kernelNeeds(config).map((need) => ({ need, support: supports(need, facts) }));
  return {
    missing: verdicts.filter((v) => v.support === 'no').map((v) => v.need),
    unknown: verdicts.filter((v) => v.support === 'unknown').map((v) => v.need),
  };
}

/** IPv6 is off in the namespace when the sysctl says so or the kernel has no IPv6 at all. */
export function ipv6Disabled(disableIpv6: string | undefined, ifInet6: string | undefined): boolean {
  if (disableIpv6 === undefined && ifInet6 === undefined) return true;
  return disableIpv6?.trim() === '1';
}
