/**
 * CaptureSpec -> Ruleset, following istio-iptables' algorithm step by step
 * (research: istio-iptables.md, section 2.3). Rule order is the order Istio's
 * builder emits, because byte-identical output depends on it. Pure.
 */
import type { CaptureSpec } from '../config/types.js';
import { type Cidr, formatCidr, parseCidr } from '../net/ip.js';
import {
  Builtin,
  Chain,
  DNS_AGENT_PORT,
  DNS_PORT,
  DNS_ZONE_CLIENT,
  DNS_ZONE_UPSTREAM,
  LOOPBACK_V6,
  OUTBOUND_MARK,
  PASSTHROUGH_V4,
  PASSTHROUGH_V6,
} from './constants.js';
import type { Family, FamilyScope, Match, Net, Rule, Ruleset, Table, Target } from './model.js';

/** Typed match constructors; the order they are listed in a rule is iptables' order. */
export const m = {
  in: (name: string): Match => ({ kind: 'inIface', name }),
  out: (name: string): Match => ({ kind: 'outIface', name }),
  src: (net: Net, negate = false): Match => ({ kind: 'src', net, negate }),
  dst: (net: Net, negate = false): Match => ({ kind: 'dst', net, negate }),
  tcp: { kind: 'proto', proto: 'tcp' } as Match,
  udp: { kind: 'proto', proto: 'udp' } as Match,
  /** `-p tcp` that Istio's nft builder leaves implicit in `tcp dport`. */
  tcpIptablesOnly: { kind: 'proto', proto: 'tcp', only: 'iptables' } as Match,
  udpIptablesOnly: { kind: 'proto', proto: 'udp', only: 'iptables' } as Match,
  dport: (proto: 'tcp' | 'udp', ports: number | readonly number[], negate = false): Match => ({
    kind: 'dport',
    proto,
    ports: typeof ports === 'number' ? [ports] : ports,
    negate,
  }),
  sport: (proto: 'tcp' | 'udp', port: number): Match => ({ kind: 'sport', proto, port }),
  uid: (id: string, negate = false): Match => ({ kind: 'uidOwner', id, negate }),
  gid: (id: string, negate = false): Match => ({ kind: 'gidOwner', id, negate }),
  ctstate: (...states: ('INVALID' | 'RELATED' | 'ESTABLISHED')[]): Match => ({ kind: 'ctstate', states }),
  mark: (mark: number, negate = false): Match => ({ kind: 'mark', mark, negate }),
  connmark: (mark: number): Match => ({ kind: 'connmark', mark }),
};

export const t = {
  return: { kind: 'return' } as Target,
  accept: { kind: 'accept' } as Target,
  drop: { kind: 'drop' } as Target,
  jump: (chain: string): Target => ({ kind: 'jump', chain }),
  redirect: (port: number, singular = false): Target => ({ kind: 'redirect', port, singular }),
  tproxy: (port: number, mark: number): Target => ({ kind: 'tproxy', port, mark }),
  setMark: (mark: number): Target => ({ kind: 'setMark', mark }),
  saveMark: { kind: 'saveMark' } as Target,
  restoreMark: { kind: 'restoreMark' } as Target,
  ctZone: (zone: number): Target => ({ kind: 'ctZone', zone }),
};

export function net(text: string): Net {
  const cidr = parseCidr(text);
  if (!cidr) throw new Error(`internal: ${text} is not a prefix (validation should have refused it)`);
  return { cidr, text };
}

const netOf = (cidr: Cidr): Net => ({ cidr, text: formatCidr(cidr) });

const EXCLUDED_DESTINATION = 'the destination is on the exclude list (-x): not captured';

/** Accumulates rules in builder order; drops IPv6 rules when IPv6 is off, as Istio does. */
class RuleList {
  readonly rules: Rule[] = [];
  constructor(private readonly ipv6: boolean) {}

  /** `-A`: the rule goes after the chain's rules so far. */
  append(table: Table, chain: string, family: FamilyScope, matches: Match[], target: Target, why: string) {
    this.push(table, chain, family, matches, target, why, undefined);
  }

  /** `-I chain position`: Istio inserts a few rules ahead of rules it wrote earlier. */
  insert(position: number, table: Table, chain: string, family: FamilyScope, matches: Match[], target: Target, why: string) {
    this.push(table, chain, family, matches, target, why, position);
  }

  both(table: Table, chain: string, matches: Match[], target: Target, why: string) {
    this.append(table, chain, 'both', matches, target, why);
  }

  private push(table: Table, chain: string, family: FamilyScope, matches: Match[], target: Target, why: string, insertAt: number | undefined) {
    if (family === 'ipv6' && !this.ipv6) return;
    this.rules.push(insertAt === undefined ? { table, chain, family, matches, target, why } : { table, chain, family, matches, target, why, insertAt });
  }

  /** One rule per family, built from that family's value of a versioned address. */
  versioned(build: (family: Family) => { table: Table; chain: string; matches: Match[]; target: Target; insertAt?: number }, why: string) {
    for (const family of ['ipv4', 'ipv6'] as const) {
      const rule = build(family);
      this.push(rule.table, rule.chain, family, rule.matches, rule.target, why, rule.insertAt);
    }
  }
}

export function buildRuleset(config: CaptureSpec): Ruleset {
  const ipv6 = config.ipv6.enabled;
  const list = new RuleList(ipv6);
  const loopback = (family: Family): Net => net(family === 'ipv4' ? config.ipv4LoopbackCidr : LOOPBACK_V6);
  const passthrough = (family: Family): Net => net(family === 'ipv4' ? PASSTHROUGH_V4 : PASSTHROUGH_V6);
  const tproxy = config.mode === 'TPROXY';
  const dns = config.dns.effective;
  const { nat, mangle } = { nat: 'nat', mangle: 'mangle' } as const;
  const tunnelPort = config.inboundTunnelPort;

  // 1. Excluded interfaces are never captured, in either direction.
  for (const nic of config.excludeInterfaces) {
    list.both(nat, Builtin.Prerouting, [m.in(nic)], t.return, `traffic arriving on excluded interface ${nic} is not captured`);
    list.both(nat, Builtin.Output, [m.out(nic)], t.return, `traffic leaving through excluded interface ${nic} is not captured`);
  }
  if (tproxy) {
    for (const nic of config.excludeInterfaces) {
      list.both(mangle, Builtin.Prerouting, [m.in(nic)], t.return, `traffic arriving on excluded interface ${nic} is not captured`);
      list.both(mangle, Builtin.Output, [m.out(nic)], t.return, `traffic leaving through excluded interface ${nic} is not captured`);
    }
  }

  // 2. Rerouted (KubeVirt) interfaces skip inbound capture; their traffic is handled as outbound below.
  for (const nic of config.rerouteInterfaces) {
    list.insert(1, nat, Builtin.Prerouting, 'both', [m.in(nic)], t.return, `traffic from rerouted interface ${nic} skips inbound capture`);
  }

  // 3. Drop conntrack-INVALID packets instead of letting them reset connections.
  if (config.dropInvalid) {
    list.both(mangle, Builtin.Prerouting, [{ kind: 'proto', proto: 'tcp', only: 'nft' }, m.ctstate('INVALID')], t.jump(Chain.Drop),
      'conntrack-INVALID packets are dropped (--drop-invalid)');
    list.both(mangle, Chain.Drop, [], t.drop, 'drop target for INVALID packets');
  }

  // 4-6. Chains that always exist: tunnel exemption and the two redirect targets.
  list.both(nat, Chain.Inbound, [m.tcp, m.dport('tcp', tunnelPort)], t.return, `the HBONE tunnel port ${tunnelPort} is never captured inbound`);
  list.both(nat, Chain.Redirect, [m.tcp], t.redirect(config.proxyPort), `outbound TCP goes to the proxy on ${config.proxyPort}`);
  list.both(nat, Chain.InRedirect, [m.tcp], t.redirect(config.inboundCapturePort),
    `inbound TCP goes to the proxy on ${config.inboundCapturePort}`);

  // 7. Inbound capture.
  if (config.inboundPorts.kind !== 'none') {
    const table = tproxy ? mangle : nat;
    if (tproxy) {
      list.both(mangle, Chain.Divert, [], t.setMark(config.tproxyMark), `packets of established inbound connections get mark ${config.tproxyMark}`);
      list.both(mangle, Chain.Divert, [], t.accept, 'and are accepted, to be routed to the local proxy');
      list.versioned((family) => ({
        table: mangle, chain: Chain.Tproxy,
        matches: [m.dst(loopback(family), true), m.tcp],
        target: t.tproxy(config.inboundCapturePort, config.tproxyMark),
      }), `new inbound TCP connections are handed to the proxy on ${config.inboundCapturePort} with TPROXY`);
    }
    list.both(table, Builtin.Prerouting, [m.tcp], t.jump(Chain.Inbound), 'inbound TCP is examined for capture');
    if (config.inboundPorts.kind === 'all') {
      for (const port of config.inboundPorts.exclude) {
        list.both(table, Chain.Inbound, [m.tcp, m.dport('tcp', port)], t.return, `inbound port ${port} is excluded from capture`);
      }
      if (tproxy) {
        list.both(mangle, Chain.Inbound, [m.tcp, m.ctstate('RELATED', 'ESTABLISHED')], t.jump(Chain.Divert),
          'packets of already captured inbound connections are diverted to the proxy');
        list.both(mangle, Chain.Inbound, [m.tcp], t.jump(Chain.Tproxy), 'all other inbound TCP is captured');
      } else {
        list.both(nat, Chain.Inbound, [m.tcp], t.jump(Chain.InRedirect), 'all other inbound TCP is captured');
      }
    } else {
      for (const port of config.inboundPorts.ports) {
        if (tproxy) {
          list.both(mangle, Chain.Inbound, [m.tcp, m.dport('tcp', port), m.ctstate('RELATED', 'ESTABLISHED')], t.jump(Chain.Divert),
            `packets of already captured connections to inbound port ${port} are diverted to the proxy`);
          list.both(mangle, Chain.Inbound, [m.tcp, m.dport('tcp', port)], t.jump(Chain.Tproxy), `inbound port ${port} is captured`);
        } else {
          list.both(nat, Chain.Inbound, [m.tcp, m.dport('tcp', port)], t.jump(Chain.InRedirect), `inbound port ${port} is captured`);
        }
      }
    }
  }

  // 8. All locally generated traffic is examined (no -p tcp since Istio 1.25: DNS over UDP too).
  list.both(nat, Builtin.Output, [], t.jump(Chain.Output), 'outbound traffic is examined for capture');

  // 9. Excluded outbound ports, TCP and UDP.
  for (const port of config.outboundPortsExclude) {
    list.both(nat, Chain.Output, [m.tcpIptablesOnly, m.dport('tcp', port)], t.return, `outbound TCP port ${port} is excluded from capture`);
    list.both(nat, Chain.Output, [m.udpIptablesOnly, m.dport('udp', port)], t.return, `outbound UDP port ${port} is excluded from capture`);
  }

  // 10. The proxy's inbound passthrough connections (from 127.0.0.6 / ::6) are never re-captured.
  list.versioned((family) => ({
    table: nat, chain: Chain.Output, matches: [m.out('lo'), m.src(passthrough(family))], target: t.return,
  }), "the proxy's inbound passthrough connections to the app are not captured");

  // 11-12. The proxy's own traffic.
  const proxyRules = (owner: 'uid' | 'gid', id: string) => {
    const match = owner === 'uid' ? m.uid : m.gid;
    const who = `${owner} ${id}`;
    // The multiport/DNS variant applies to uids only; Istio's gid rule always uses `! --dport <tunnel port>`.
    const dnsVariant = dns && owner === 'uid';
    list.versioned((family) => ({
      table: nat, chain: Chain.Output,
      matches: [m.out('lo'), m.dst(loopback(family), true), m.tcp,
        dnsVariant ? m.dport('tcp', [DNS_PORT, tunnelPort], true) : m.dport('tcp', tunnelPort, true), match(id)],
      target: t.jump(Chain.InRedirect),
    }), `the proxy (${who}) calling its own pod over lo is sent to inbound capture`);
    if (!config.outboundCidrs.hasLoopback) {
      list.both(nat, Chain.Output,
        dns ? [m.out('lo'), m.tcp, m.dport('tcp', DNS_PORT, true), match(id, true)] : [m.out('lo'), match(id, true)],
        t.return, `app traffic to itself over lo (not ${who}) is not captured`);
    }
    list.both(nat, Chain.Output, [match(id)], t.return, `the proxy's own traffic (${who}) is not captured`);
  };
  for (const uid of config.proxyUids) proxyRules('uid', uid);
  for (const gid of config.proxyGids) proxyRules('gid', gid);

  // 13. Owner groups.
  if (config.ownerGroups.kind === 'allExcept') {
    for (const group of config.ownerGroups.groups) {
      list.both(nat, Chain.Output, [m.gid(group)], t.return, `traffic of group ${group} is excluded from capture`);
    }
  } else {
    list.both(nat, Chain.Output, config.ownerGroups.groups.map((group) => m.gid(group, true)), t.return,
      `only traffic of groups ${config.ownerGroups.groups.join(', ')} is captured`);
  }

  // 14. DNS capture.
  if (dns) addDnsRules(list, config);

  // 15. App-to-app over localhost is not captured.
  list.versioned((family) => ({
    table: nat, chain: Chain.Output, matches: [m.dst(loopback(family))], target: t.return,
  }), 'traffic to localhost is not captured');

  // 16. Excluded destinations. One reason for them all, the rule beside it names the address:
  // a list may hold thousands, each built on a cold start.
  for (const cidr of config.outboundCidrsExclude.v4) list.append(nat, Chain.Output, 'ipv4', [m.dst(netOf(cidr))], t.return, EXCLUDED_DESTINATION);
  for (const cidr of config.outboundCidrsExclude.v6) list.append(nat, Chain.Output, 'ipv6', [m.dst(netOf(cidr))], t.return, EXCLUDED_DESTINATION);

  // 17. Outbound ports always captured.
  for (const port of config.outboundPorts) {
    list.both(nat, Chain.Output, [m.tcpIptablesOnly, m.dport('tcp', port)], t.jump(Chain.Redirect), `outbound TCP port ${port} is always captured`);
  }

  // 18. Captured destinations. Reroute-interface rules are inserted at 1, so the last one ends up first.
  const include = config.outboundCidrs;
  if (include.wildcard) {
    list.both(nat, Chain.Output, [], t.jump(Chain.Redirect), 'all other outbound traffic is captured');
    for (const nic of config.rerouteInterfaces) {
      list.insert(1, nat, Builtin.Prerouting, 'both', [m.in(nic)], t.jump(Chain.Redirect), `traffic from rerouted interface ${nic} is captured as outbound`);
    }
  } else {
    for (const family of ['ipv4', 'ipv6'] as const) {
      for (const cidr of family === 'ipv4' ? include.v4 : include.v6) {
        const text = formatCidr(cidr);
        for (const nic of config.rerouteInterfaces) {
          list.insert(1, nat, Builtin.Prerouting, family, [m.in(nic), m.dst(netOf(cidr))], t.jump(Chain.Redirect),
            `traffic from rerouted interface ${nic} to ${text} is captured as outbound`);
        }
        list.append(nat, Chain.Output, family, [m.dst(netOf(cidr))], t.jump(Chain.Redirect), `outbound traffic to ${text} is captured`);
      }
    }
  }

  // 19. TPROXY tail: marks and connmarks that route replies and keep the proxy's own pod traffic apart.
  if (tproxy) {
    const mark = config.tproxyMark;
    list.both(mangle, Builtin.Prerouting, [m.tcp, m.mark(mark)], t.saveMark, `mark ${mark} is saved on the connection`);
    list.both(mangle, Builtin.Output, [m.tcp, m.out('lo'), m.mark(mark)], t.return, `packets already marked ${mark} are left alone`);
    const markOwn = (owner: 'uid' | 'gid', id: string) =>
      list.versioned((family) => ({
        table: mangle, chain: Builtin.Output,
        matches: [m.dst(loopback(family), true), m.tcp, m.out('lo'), owner === 'uid' ? m.uid(id) : m.gid(id)],
        target: t.setMark(OUTBOUND_MARK),
      }), `the proxy (${owner} ${id}) calling its own pod is marked ${OUTBOUND_MARK} so inbound capture sees it`);
    for (const uid of config.proxyUids) markOwn('uid', uid);
    for (const gid of config.proxyGids) markOwn('gid', gid);
    list.both(mangle, Builtin.Output, [m.tcp, m.connmark(mark)], t.restoreMark, `replies of TPROXY connections get mark ${mark} back`);
    list.insert(1, mangle, Chain.Inbound, 'both', [m.tcp, m.mark(mark)], t.return, `packets marked ${mark} are not captured again`);
    list.versioned((family) => ({
      table: mangle, chain: Chain.Inbound, insertAt: 2,
      matches: [m.tcp, m.src(passthrough(family)), m.in('lo')], target: t.return,
    }), "the proxy's passthrough connections are not captured inbound");
    list.insert(3, mangle, Chain.Inbound, 'both', [m.tcp, m.in('lo'), m.mark(OUTBOUND_MARK, true)], t.return,
      `local traffic not marked ${OUTBOUND_MARK} is not captured inbound`);
  }

  return config.cidrSets ? { ipv6, nftSets: true, rules: list.rules } : { ipv6, rules: list.rules };
}

function addDnsRules(list: RuleList, config: CaptureSpec): void {
  const { captureAll, serversV4, serversV6 } = config.dns;
  const nat = 'nat';
  const raw = 'raw';
  const v4 = captureAll || serversV4.length > 0;
  const v6 = captureAll || serversV6.length > 0;
  const server = (text: string, family: Family): Net => net(`${text}/${family === 'ipv4' ? 32 : 128}`);

  list.both(raw, Builtin.Output, [], t.jump(Chain.OutputDns), 'outbound DNS is examined for conntrack zones');
  // Istio's nft builder writes this jump once for both families; the iptables one per family that has servers.
  list.append(nat, Chain.Output, v4 && v6 ? 'both' : v4 ? 'ipv4' : 'ipv6', [], t.jump(Chain.OutputDns), 'outbound DNS is examined for capture');

  if (captureAll) {
    list.both(nat, Chain.OutputDns, [m.tcp, m.dport('tcp', DNS_PORT)], t.redirect(DNS_AGENT_PORT), `all DNS over TCP goes to the agent on ${DNS_AGENT_PORT}`);
  } else {
    for (const s of serversV4) {
      list.append(nat, Chain.OutputDns, 'ipv4', [m.tcpIptablesOnly, m.dport('tcp', DNS_PORT), m.dst(server(s, 'ipv4'))], t.redirect(DNS_AGENT_PORT),
        `DNS over TCP to ${s} goes to the agent on ${DNS_AGENT_PORT}`);
    }
    for (const s of serversV6) {
      list.append(nat, Chain.OutputDns, 'ipv6', [m.tcpIptablesOnly, m.dport('tcp', DNS_PORT), m.dst(server(s, 'ipv6'))], t.redirect(DNS_AGENT_PORT),
        `DNS over TCP to ${s} goes to the agent on ${DNS_AGENT_PORT}`);
    }
  }
  if (captureAll) {
    list.both(nat, Chain.OutputDns, [m.udpIptablesOnly, m.dport('udp', DNS_PORT)], t.redirect(DNS_AGENT_PORT, true),
      `all DNS over UDP goes to the agent on ${DNS_AGENT_PORT}`);
  } else {
    for (const s of serversV4) {
      list.append(nat, Chain.OutputDns, 'ipv4', [m.udpIptablesOnly, m.dport('udp', DNS_PORT), m.dst(server(s, 'ipv4'))], t.redirect(DNS_AGENT_PORT, true),
        `DNS over UDP to ${s} goes to the agent on ${DNS_AGENT_PORT}`);
    }
    for (const s of serversV6) {
      list.append(nat, Chain.OutputDns, 'ipv6', [m.udpIptablesOnly, m.dport('udp', DNS_PORT), m.dst(server(s, 'ipv6'))], t.redirect(DNS_AGENT_PORT, true),
        `DNS over UDP to ${s} goes to the agent on ${DNS_AGENT_PORT}`);
    }
  }

  // Conntrack zones: the proxy's upstream queries (zone 1) and its answers to apps (zone 2).
  const zoneRules = (owner: 'uid' | 'gid', id: string) => {
    const match = owner === 'uid' ? m.uid(id) : m.gid(id);
    list.both(raw, Chain.OutputDns, [m.udpIptablesOnly, m.dport('udp', DNS_PORT), match], t.ctZone(DNS_ZONE_UPSTREAM),
      `the proxy's (${owner} ${id}) upstream DNS queries use conntrack zone ${DNS_ZONE_UPSTREAM}`);
    list.both(raw, Chain.OutputDns, [m.udpIptablesOnly, m.sport('udp', DNS_AGENT_PORT), match], t.ctZone(DNS_ZONE_CLIENT),
      `the agent's (${owner} ${id}) DNS answers use conntrack zone ${DNS_ZONE_CLIENT}`);
  };
  for (const uid of config.proxyUids) zoneRules('uid', uid);
  for (const gid of config.proxyGids) zoneRules('gid', gid);

  if (captureAll) {
    list.both(raw, Builtin.Prerouting, [], t.jump(Chain.Inbound), 'inbound DNS answers are examined for conntrack zones');
    list.both(raw, Chain.OutputDns, [m.udpIptablesOnly, m.dport('udp', DNS_PORT)], t.ctZone(DNS_ZONE_CLIENT),
      `app DNS queries use conntrack zone ${DNS_ZONE_CLIENT}`);
    list.both(raw, Chain.Inbound, [m.udpIptablesOnly, m.sport('udp', DNS_PORT)], t.ctZone(DNS_ZONE_UPSTREAM),
      `DNS answers from servers use conntrack zone ${DNS_ZONE_UPSTREAM}`);
    return;
  }
  for (const family of ['ipv4', 'ipv6'] as const) {
    const servers = family === 'ipv4' ? serversV4 : serversV6;
    if (servers.length === 0) continue;
    list.append(raw, Builtin.Prerouting, family, [], t.jump(Chain.Inbound), 'inbound DNS answers are examined for conntrack zones');
    for (const s of servers) {
      list.append(raw, Chain.OutputDns, family, [m.udpIptablesOnly, m.dport('udp', DNS_PORT), m.dst(server(s, family))], t.ctZone(DNS_ZONE_CLIENT),
        `app DNS queries to ${s} use conntrack zone ${DNS_ZONE_CLIENT}`);
      list.append(raw, Chain.Inbound, family, [m.udpIptablesOnly, m.sport('udp', DNS_PORT), m.src(server(s, family))], t.ctZone(DNS_ZONE_UPSTREAM),
        `DNS answers from ${s} use conntrack zone ${DNS_ZONE_UPSTREAM}`);
    }
  }
}
