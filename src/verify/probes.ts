/**
 * Which real connections prove a config's capture, chosen from the config
 * alone. Pure.
 *
 *  - outbound: a non-proxy user connecting to a captured, non-loopback address
 *    must land on the proxy's outbound port;
 *  - bypass: the proxy's own user connecting to the same address must not;
 *  - inbound path: the proxy's user connecting over lo to 127.0.0.6 (what
 *    Istio's istio-validation does) must land on the inbound capture port.
 */
import type { CaptureConfig } from '../config/types.js';
import { type Cidr, type IpAddress, cidrContains, formatIp, isLoopback, maskCidr, parseIp } from '../net/ip.js';

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

export function planProbes(config: CaptureConfig): ProbePlan {
  const probes: Probe[] = [];
  const skipped: string[] = [];
  const proxyUid = Number(config.proxyUids[0] ?? 1337);
  const proxyGid = Number(config.proxyGids[0] ?? proxyUid);
  // An app user that no uid/gid rule exempts.
  let appUid = 65534;
  while (config.proxyUids.includes(String(appUid)) || config.proxyGids.includes(String(appUid))) appUid--;
  let appGid = appUid;
  if (config.ownerGroups.kind === 'only') {
    const numeric = config.ownerGroups.groups.find((group) => /^\d+$/.test(group));
    if (numeric) appGid = Number(numeric);
    else skipped.push('outbound capture: ISTIO_OUTBOUND_OWNER_GROUPS lists only group names; no numeric group to probe as');
  } else if (config.ownerGroups.groups.includes(String(appGid))) {
    appGid = appUid - 1;
  }

  const outbound = pickOutbound(config);
  if (typeof outbound === 'string') {
    skipped.push(`outbound capture: ${outbound}`);
  } else if (!skipped.length) {
    probes.push({ name: `app (uid ${appUid}) -> ${outbound.host}:${outbound.port} is captured to the proxy port ${config.proxyPort}`,
      uid: appUid, gid: appGid, ...outbound, expect: 'outbound-capture' });
    probes.push({ name: `proxy (uid ${proxyUid}) -> ${outbound.host}:${outbound.port} bypasses the capture`,
      uid: proxyUid, gid: proxyGid, ...outbound, expect: 'not-captured' });
  }
  if (config.probePort === config.inboundTunnelPort) {
    skipped.push(`inbound path: the probe port ${config.probePort} is the tunnel port, which is never captured`);
  } else {
    probes.push({ name: `proxy (uid ${proxyUid}) -> 127.0.0.6:${config.probePort} over lo is sent to the inbound port ${config.inboundCapturePort}`,
      uid: proxyUid, gid: proxyGid, host: '127.0.0.6', port: config.probePort, expect: 'inbound-capture' });
  }
  return { probes, skipped };
}
