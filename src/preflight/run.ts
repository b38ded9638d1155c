/**
 * Preflight, before anything is changed: capabilities, kernel support for the
 * tables and extensions the config needs, and IPv6. Reads files only.
 */
import { createRequire } from 'node:module';
import type { System } from '../backend/system.js';
import { ExitCode, MeshcapError } from '../errors.js';
import type { Logger } from '../log.js';
import type { CaptureConfig } from '../config/types.js';
import { type KernelFacts, type RuleWriter, checkKernel, effectiveCapabilities, ipv6Disabled, missingCapabilities } from './checks.js';

export interface PreflightResult {
  /** IPv6 exists and is enabled in this namespace. */
  readonly ipv6Available: boolean;
}

/**
 * The capabilities the writer needs are effective. Called before anything is
 * read with what is known then (the pinned backend, or none), and again once
 * detection has chosen iptables-legacy, the one writer that needs CAP_NET_RAW.
 */
export function checkCapabilities(sys: System, writer?: RuleWriter, chosenBecause?: string): void {
  const status = sys.readFile('/proc/self/status');
  const caps = status === undefined ? undefined : effectiveCapabilities(status);
  if (caps === undefined) return; // Not Linux procfs: let the tools speak for themselves.
  const missing = missingCapabilities(caps, writer);
  if (missing.length === 0) return;
  const uid = /^Uid:\s*(\d+)/m.exec(status ?? '')?.[1];
  const nonRoot = uid !== undefined && uid !== '0';
  if (!missing.includes('CAP_NET_ADMIN')) {
    throw new MeshcapError({
      exitCode: ExitCode.Permission,
      what: 'missing CAP_NET_RAW: the iptables-legacy backend cannot change netfilter rules without it',
      why: `iptables-legacy reaches the tables through a raw socket, which needs CAP_NET_RAW (iptables-nft and native nftables need only CAP_NET_ADMIN); legacy was chosen because ${chosenBecause ?? 'it was pinned'}`,
      fix: 'add NET_RAW to securityContext.capabilities.add (istio-init adds NET_ADMIN and NET_RAW), or use --backend=nft where the node uses nf_tables; nothing was changed',
    });
  }
  throw new MeshcapError({
    exitCode: ExitCode.Permission,
    what: `missing ${missing.join(' and ')}: netfilter rules cannot be changed`,
    why: nonRoot ? `the process runs as uid ${uid}, not root, so it has no effective capabilities` : 'the container does not grant these capabilities',
    fix:
      'run the init container as uid 0 with securityContext.capabilities.add: [NET_ADMIN, NET_RAW] (what istio-init uses; ' +
      'iptables-nft and native nftables need only NET_ADMIN, iptables-legacy needs both); nothing was changed',
  });
}

export function readKernelFacts(sys: System): KernelFacts {
  const release = sys.readFile('/proc/sys/kernel/osrelease')?.trim();
  let kernelConfig: string | undefined | null = null;
  // Decompressing the kernel config costs a few ms: only done when a need is not already loaded.
  const readConfig = () => {
    if (kernelConfig !== null) return kernelConfig;
    const gz = sys.readBytes('/proc/config.gz');
    try {
      // node:zlib is loaded only here: most runs never need the kernel config. A built-in resolves
      // from any base path, so '/' also works in the single-file (CommonJS) build, which has no import.meta.
      const { gunzipSync } = createRequire('/')('node:zlib') as typeof import('node:zlib');
      kernelConfig = gz ? gunzipSync(gz).toString('utf8') : undefined;
    } catch {
      kernelConfig = undefined;
    }
    kernelConfig ??= release ? sys.readFile(`/boot/config-${release}`) : undefined;
    return kernelConfig;
  };
  const facts: { -readonly [K in keyof KernelFacts]: KernelFacts[K] } = { kernelConfig: readConfig, kernelConfigRead: () => kernelConfig !== null };
  const matches = sys.readFile('/proc/net/ip_tables_matches');
  const targets = sys.readFile('/proc/net/ip_tables_targets');
  if (matches) facts.loadedMatches = matches;
  if (targets) facts.loadedTargets = targets;
  if (release) {
    const builtin = sys.readFile(`/lib/modules/${release}/modules.builtin`);
    const dep = sys.readFile(`/lib/modules/${release}/modules.dep`);
    if (builtin) facts.modulesBuiltin = builtin;
    if (dep) facts.modulesDep = dep;
  }
  return facts;
}

export function preflight(config: CaptureConfig, sys: System, log: Logger): PreflightResult {
  checkCapabilities(sys, config.nativeNftables ? 'nftables' : config.backend === 'auto' ? undefined : config.backend);

  const kernel = checkKernel(config, readKernelFacts(sys));
  if (kernel.missing.length > 0) {
    const modules = [...new Set(kernel.missing.map((need) => need.module))];
    throw new MeshcapError({
      exitCode: ExitCode.Unsupported,
      what: `the kernel lacks what this configuration needs: ${kernel.missing.map((need) => need.extension ?? `${need.table} table`).join(', ')}`,
      why: kernel.missing.map((need) => need.why).join('; '),
      fix: `use a kernel built with ${modules.join(', ')} (modprobe ${modules.join(' ')} on the node, or meshcap's node-prep DaemonSet), or drop the option that needs it; nothing was changed`,
    });
  }
  if (kernel.unknown.length > 0) {
    log.debug(`kernel support not provable from files for: ${kernel.unknown.map((need) => need.extension ?? need.table).join(', ')} (no kernel config or module list visible); relying on the tools' own errors`);
  }

  const disabled = ipv6Disabled(sys.readFile('/proc/sys/net/ipv6/conf/all/disable_ipv6'), sys.readFile('/proc/net/if_inet6'));
  if (disabled && config.ipv6.enabled) {
    if (config.ipv6.reason.startsWith('--ipv6=')) {
      throw new MeshcapError({
        exitCode: ExitCode.Unsupported,
        what: 'IPv6 rules were requested (--ipv6=true) but IPv6 is disabled in this network namespace',
        why: 'net.ipv6.conf.all.disable_ipv6 is 1, or the kernel has no IPv6',
        fix: 'use --ipv6=auto (IPv6 rules are then skipped) or --ipv6=false, or enable IPv6 for the pod; nothing was changed',
      });
    }
    log.warn(`IPv6 is disabled in this namespace: IPv6 rules skipped (${config.ipv6.reason})`);
  } else if (disabled) {
    log.info('IPv6 is disabled in this namespace: IPv6 rules skipped, the IPv6 tables are left alone');
  }
  return { ipv6Available: !disabled };
}
