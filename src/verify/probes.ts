/**
 * Which real connections prove a config's capture, chosen from the config
 * alone, and which of them this process can make. Pure.
 *
 *  - outbound: a non-proxy user connecting to a captured, non-loopback address
 *    must land on the proxy's outbound port (the redirect keeps it in the pod);
 *  - bypass: the proxy's own user connecting over lo to 127.0.0.7 on the
 *    tunnel port, which only the proxy's uid/gid exemption keeps from the
 *    outbound capture, must reach that address itself (it never leaves the pod);
 *  - inbound path: the proxy's user connecting over lo to 127.0.0.6 (what
 *    Istio's istio-validation does) must land on the inbound capture port.
 *
 * No probe is meant to leave the pod: the outbound one stays in only because
 * the capture redirects it, so it is run only once the rules are known to be
 * the desired ones.
 */
import type { CaptureConfig } from '../config/types.js';
import { type Cidr, type IpAddress, cidrContains, formatIp, isLoopback, maskCidr, parseCidr, parseIp } from '../net/ip.js';

export type Expectation = 'outbound-capture' | 'not-captured' | 'inbound-capture';

export interface Probe {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly host: string;
  readonly port: number;
  readonly expect: Expectation;
}

export interface ProbePlan {
  readonly probes: readonly Probe[];
  /** Why a path is not probed. */
  readonly skipped: readonly string[];
}

/** Reserved benchmarking and documentation addresses: nothing real answers there. */
const CANDIDATES = ['198.18.255.254', '198.19.255.254', '203.0.113.254', '192.0.2.254'];
/** A loopback address outside Istio's default loopback CIDR (127.0.0.1/32) and not the passthrough source 127.0.0.6. */
export const BYPASS_HOST = '127.0.0.7';

function hostInside(cidr: Cidr): IpAddress {
  if (cidr.prefix >= cidr.addr.bytes.length * 8 - 1) return cidr.addr;
  const bytes = [...maskCidr(cidr).addr.bytes];
  // The first usable host: network address + 1.
  bytes[bytes.length - 1] = bytes[bytes.length - 1]! | 1;
  return { family: cidr.addr.family, bytes };
}

function excluded(config: CaptureConfig, address: IpAddress): boolean {
  const list = address.family === 4 ? config.outboundCidrsExclude.v4 : config.outboundCidrsExclude.v6;
  return list.some((cidr) => cidrContains(cidr, address)) || isLoopback(address);
}

function pickOutbound(config: CaptureConfig): { host: string; port: number } | string {
  const port = [80, 8080, 443, 9999].find((p) => !config.outboundPortsExclude.includes(p)) ?? 1;
  if (config.outboundCidrs.wildcard) {
    const host = CANDIDATES.map((text) => parseIp(text)!).find((address) => !excluded(config, address));
    return host ? { host: formatIp(host), port } : 'every probe address is excluded';
  }
  for (const cidr of config.outboundCidrs.v4) {
    const host = hostInside(cidr);
    if (!excluded(config, host)) return { host: formatIp(host), port };
  }
  if (config.outboundPorts.length > 0) {
    const host = CANDIDATES.map((text) => parseIp(text)!).find((address) => !excluded(config, address));
    if (host) return { host: formatIp(host), port: config.outboundPorts[0]! };
  }
  return 'the config captures no IPv4 outbound destination (-i and -q are empty)';
}

/**
 * Why the proxy's connection to 127.0.0.7 on the tunnel port would not prove
 * the proxy exemption (something else would let it through anyway), or undefined.
 */
function bypassProbeUnfit(config: CaptureConfig, proxyGid: number): string | undefined {
  const host = parseIp(BYPASS_HOST)!;
  const port = config.inboundTunnelPort;
  if (config.excludeInterfaces.includes('lo')) return 'lo is an excluded interface';
  // TPROXY marks the proxy's own connections over lo for inbound capture (mangle), whatever the port.
  if (config.mode === 'TPROXY' && config.inboundPorts.kind !== 'none') return "in TPROXY mode the proxy's own connections over lo are captured inbound";
  if ([config.proxyPort, config.inboundCapturePort].includes(port)) return `the tunnel port ${port} is also a proxy port`;
  if (config.outboundPortsExclude.includes(port)) return `the tunnel port ${port} is excluded from outbound capture (-o)`;
  const loopback = parseCidr(config.ipv4LoopbackCidr);
  if (!loopback || cidrContains(loopback, host)) return `${BYPASS_HOST} lies in the loopback CIDR ${config.ipv4LoopbackCidr}, which is never captured`;
  if (config.outboundCidrsExclude.v4.some((cidr) => cidrContains(cidr, host))) return `${BYPASS_HOST} is excluded from outbound capture (-x)`;
  const included = config.outboundCidrs.wildcard || config.outboundCidrs.v4.some((cidr) => cidrContains(cidr, host)) || config.outboundPorts.includes(port);
  if (!included) return `${BYPASS_HOST}:${port} would not be captured for anyone (-i/-q)`;
  const groups = config.ownerGroups;
  if (groups.kind === 'only' ? !groups.groups.includes(String(proxyGid)) : groups.groups.includes(String(proxyGid))) {
    return `the owner groups (ISTIO_OUTBOUND_OWNER_GROUPS/_EXCLUDE) already exempt gid ${proxyGid}`;
  }
  return undefined;
}

export function planProbes(config: CaptureConfig): ProbePlan {
  const probes: Probe[] = [];
  const skipped: string[] = [];
  const proxyUid = Number(config.proxyUids[0] ?? 1337);
  const proxyGid = Number(config.proxyGids[0] ?? proxyUid);
  // An app user that no uid/gid rule exempts.
  let appUid = 65534;
  while (config.proxyUids.includes(String(appUid)) || config.proxyGids.includes(String(appUid))) appUid--;
  let appGid = appUid;
  let appProbe = true;
  if (config.ownerGroups.kind === 'only') {
    const numeric = config.ownerGroups.groups.find((group) => /^\d+$/.test(group));
    if (numeric) appGid = Number(numeric);
    else {
      appProbe = false;
      skipped.push('outbound capture: ISTIO_OUTBOUND_OWNER_GROUPS lists only group names; no numeric group to probe as');
    }
  } else if (config.ownerGroups.groups.includes(String(appGid))) {
    appGid = appUid - 1;
  }

  const outbound = pickOutbound(config);
  if (typeof outbound === 'string') {
    skipped.push(`outbound capture: ${outbound}`);
  } else if (appProbe) {
    probes.push({ name: `app (uid ${appUid}) -> ${outbound.host}:${outbound.port} is captured to the proxy port ${config.proxyPort}`,
      uid: appUid, gid: appGid, ...outbound, expect: 'outbound-capture' });
  }
  const unfit = bypassProbeUnfit(config, proxyGid);
  if (unfit) {
    skipped.push(`proxy bypass: ${unfit}, so no connection inside the pod tells the exemption of uid ${proxyUid} apart`);
  } else {
    probes.push({ name: `proxy (uid ${proxyUid}) -> ${BYPASS_HOST}:${config.inboundTunnelPort} over lo bypasses the capture`,
      uid: proxyUid, gid: proxyGid, host: BYPASS_HOST, port: config.inboundTunnelPort, expect: 'not-captured' });
  }
  if (config.probePort === config.inboundTunnelPort) {
    skipped.push(`inbound path: the probe port ${config.probePort} is the tunnel port, which is never captured`);
  } else {
    probes.push({ name: `proxy (uid ${proxyUid}) -> 127.0.0.6:${config.probePort} over lo is sent to the inbound port ${config.inboundCapturePort}`,
      uid: proxyUid, gid: proxyGid, host: '127.0.0.6', port: config.probePort, expect: 'inbound-capture' });
  }
  return { probes, skipped };
}

/** Who this process is, and what it may do, from /proc/self/status. */
export interface Identity {
  readonly uid: number;
  readonly gid: number;
  /** CAP_SETUID and CAP_SETGID are effective: probes can connect as other users. */
  readonly canSwitchUser: boolean;
  /** CAP_NET_ADMIN is effective: the rules can be read. */
  readonly canReadRules: boolean;
}

const CAP_SETGID = 6;
const CAP_SETUID = 7;
const CAP_NET_ADMIN = 12;

/** The identity from /proc/self/status (real ids; effective capabilities), or the fallback's when unreadable. */
export function identityFromStatus(status: string | undefined, fallback: { uid: number; gid: number }): Identity {
  const uid = Number(/^Uid:\s*(\d+)/m.exec(status ?? '')?.[1] ?? fallback.uid);
  const gid = Number(/^Gid:\s*(\d+)/m.exec(status ?? '')?.[1] ?? fallback.gid);
  const capHex = /^CapEff:\s*([0-9a-f]+)$/m.exec(status ?? '')?.[1];
  if (capHex === undefined) return { uid, gid, canSwitchUser: uid === 0, canReadRules: uid === 0 };
  const caps = BigInt(`0x${capHex}`);
  const has = (bit: number) => (caps & (1n << BigInt(bit))) !== 0n;
  return { uid, gid, canSwitchUser: has(CAP_SETUID) && has(CAP_SETGID), canReadRules: has(CAP_NET_ADMIN) };
}

export interface ProbeRun {
  readonly probe: Probe;
  /** Connect as probe.uid/gid (needs CAP_SETUID/CAP_SETGID); otherwise as this process. */
  readonly switchUser: boolean;
}

/** Would this process's own traffic be captured outbound (it is neither the proxy nor exempt by group)? */
function selfCaptured(config: CaptureConfig, me: Identity): boolean {
  if (config.proxyUids.includes(String(me.uid)) || config.proxyGids.includes(String(me.gid))) return false;
  const groups = config.ownerGroups;
  return groups.kind === 'only' ? groups.groups.includes(String(me.gid)) : !groups.groups.includes(String(me.gid));
}

/**
 * Which probes this process runs and how. Without CAP_SETUID/CAP_SETGID it
 * cannot connect as another user: the outbound probe is then made as itself
 * when its own traffic is captured (proving the same path), and the proxy's
 * probes are skipped, saying which capabilities would run them.
 */
export function assignProbes(config: CaptureConfig, probes: readonly Probe[], me: Identity): { runs: ProbeRun[]; skipped: string[] } {
  const runs: ProbeRun[] = [];
  const skipped: string[] = [];
  for (const probe of probes) {
    if (probe.uid === me.uid && (probe.gid === me.gid || !me.canSwitchUser)) runs.push({ probe, switchUser: false });
    else if (me.canSwitchUser) runs.push({ probe, switchUser: true });
    else if (probe.expect === 'outbound-capture' && selfCaptured(config, me)) {
      const name = probe.name.replace(/^app \(uid \d+\)/, `this process (uid ${me.uid})`);
      runs.push({ probe: { ...probe, name, uid: me.uid, gid: me.gid }, switchUser: false });
    } else {
      skipped.push(`${probe.name}: not run, connecting as uid ${probe.uid} needs CAP_SETUID and CAP_SETGID (this process is uid ${me.uid} without them; add SETUID and SETGID to the container's capabilities to run every probe)`);
    }
  }
  return { runs, skipped };
}

/**
 * The runs that cannot send anything out of the pod. The outbound probe stays
 * inside only because the capture redirects it: it runs once the rules are
 * known to be the desired ones, and where a route exists (without one it would
 * fail before netfilter and prove nothing).
 */
export function keepInsidePod(runs: readonly ProbeRun[], facts: { rulesChecked: boolean; procNetRoute: string | undefined }): { runs: ProbeRun[]; skipped: string[] } {
  const kept: ProbeRun[] = [];
  const skipped: string[] = [];
  for (const run of runs) {
    const { probe } = run;
    if (probe.expect !== 'outbound-capture') kept.push(run);
    else if (!facts.rulesChecked) skipped.push(`${probe.name}: not run, the rules could not be checked first (without the capture it would leave the pod)`);
    else if (hasIpv4Route(facts.procNetRoute, probe.host) === false) {
      skipped.push(`${probe.name}: not run, the namespace has no route to ${probe.host} (no default route), so the connection would fail before netfilter; a pod has one`);
    } else kept.push(run);
  }
  return { runs: kept, skipped };
}

/**
 * Does the main routing table (/proc/net/route text) have a route to this
 * IPv4 address? Without one, a connection fails before netfilter sees it.
 * Undefined when the table is unreadable. Pure.
 */
export function hasIpv4Route(procNetRoute: string | undefined, host: string): boolean | undefined {
  const address = parseIp(host);
  if (procNetRoute === undefined || !address || address.family !== 4) return undefined;
  // The file's words are little-endian hex: 0100A8C0 is 192.168.0.1.
  const word = (hex: string) => {
    const n = Number.parseInt(hex, 16);
    return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
  };
  return procNetRoute.split('\n').slice(1).some((line) => {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 8) return false;
    const [dest, flags, mask] = [word(fields[1]!), Number.parseInt(fields[3]!, 16), word(fields[7]!)];
    // RTF_UP only; the bytes masked compare equal.
    return (flags & 1) === 1 && address.bytes.every((byte, i) => (byte & mask[i]!) === dest[i]);
  });
}
