/**
 * `meshcap trace`: one connection through the rules a config would write, or
 * through the live rules of this (or another) namespace, chain by chain.
 */
import { readHostFacts } from '../backend/host.js';
import { realSystem } from '../backend/system.js';
import { parseCaptureConfig } from '../config/parse.js';
import { type IpAddress, isLinkLocalUnicast, isLoopback, parseIp } from '../net/ip.js';
import { buildRuleset } from '../rules/build.js';
import { DNS_AGENT_PORT } from '../rules/constants.js';
import { type Family, familyLabel } from '../rules/model.js';
import { readIptablesOnly } from '../status/gather.js';
import { type SourceName, liveRuleset } from '../status/sources.js';
import { simRulesetFromConfig } from '../trace/from-config.js';
import type { Packet } from '../trace/model.js';
import { renderTraceText, traceJson } from '../trace/render.js';
import { DEFAULT_PORT_LABELS, simulate } from '../trace/simulate.js';
import { defineCommand } from './command.js';
import type { Command } from './context.js';
import { ExitCode } from '../errors.js';
import { EXIT_CODES_HELP } from './help.js';
import { badFlag, reRunInRequestedNamespace, takeOwnFlags } from './own-flags.js';

export const TRACE_HELP = `Usage: meshcap trace --dst ADDR --dport PORT [connection] [--live[=legacy|nft|nftables]] [istio-iptables flags]

Simulate one connection through the capture rules and print every chain and
rule it passes and where it ends: redirected to the proxy (15001 outbound,
15006 inbound, 15053 DNS), handed over by TPROXY, left to normal routing, or
dropped. Without --live the rules are the ones the given istio-iptables flags
would write (same flags and environment as 'meshcap apply'); with --live they
are read from this network namespace (the backend holding mesh rules, or the
one named).

Connection:
  --direction outbound|inbound   [default outbound]
  --dst ADDR, --dport PORT       destination (required); inbound default: this pod's address
  --src ADDR, --sport PORT       source [outbound: the pod's address, or 127.0.0.1 / ::1 for a
                                 loopback destination; inbound: 192.0.2.1 / 2001:db8::ffff; sport 40000]
  --proto tcp|udp                [default tcp]
  --uid N, --gid N               owner of the sending socket (outbound) [default 0 and the uid]
  --in IFACE, --out IFACE        [inbound: in eth0; outbound: out lo for loopback and local
                                 destinations, else eth0]
  --state new|established        first packet, or a later one (nat is only consulted for new)
  --mark N                       packet mark on entry [default 0]

Where:
  --live[=legacy|nft|nftables]   trace the live rules instead of a configuration
  --netns NAME | --pid PID       run in that network namespace (ip netns exec / nsenter)
  --json                         machine-readable result

${EXIT_CODES_HELP}
`;

const OWN = {
  direction: 'string',
  src: 'string',
  dst: 'string',
  sport: 'string',
  dport: 'string',
  proto: 'string',
  uid: 'string',
  gid: 'string',
  in: 'string',
  out: 'string',
  state: 'string',
  mark: 'string',
  live: 'optional',
  json: 'bool',
  netns: 'string',
  pid: 'string',
} as const;

function number(flag: string, text: string, max: number, what: string): number {
  if (!/^(0|[1-9][0-9]*|0x[0-9a-fA-F]+)$/.test(text) || Number(text) > max) {
    throw badFlag(flag, text, `is not ${what}`, `give a number from 0 to ${max}`);
  }
  return Number(text);
}

function address(flag: string, text: string): IpAddress {
  const parsed = parseIp(text);
  if (!parsed) throw badFlag(flag, text, 'is not an IP address', 'give an IPv4 or IPv6 address without a prefix length, e.g. 10.0.0.5 or fd00::5');
  return parsed;
}

function iface(flag: string, text: string): string {
  if (!/^[A-Za-z0-9_.@:+-]{1,15}$/.test(text)) throw badFlag(flag, text, 'is not an interface name', 'give a name like eth0 or lo (at most 15 characters)');
  return text;
}

/** The namespace's own first address of a family: the pod IP. */
function podAddress(family: Family): IpAddress | undefined {
  for (const text of readHostFacts().interfaceAddresses()) {
    const parsed = parseIp(text.split('%')[0]!);
    if (!parsed || (parsed.family === 4) !== (family === 'ipv4')) continue;
    if (isLoopback(parsed) || isLinkLocalUnicast(parsed)) continue;
    return parsed;
  }
  return undefined;
}

function localAddresses(): IpAddress[] {
  return readHostFacts()
    .interfaceAddresses()
    .map((text) => parseIp(text.split('%')[0]!))
    .filter((a): a is IpAddress => a !== undefined);
}

const sameAddress = (a: IpAddress, b: IpAddress) => a.family === b.family && a.bytes.every((byte, i) => byte === b.bytes[i]);

export function buildPacket(values: ReadonlyMap<string, string | true>): Packet {
  const str = (name: string) => {
    const value = values.get(name);
    return typeof value === 'string' ? value : undefined;
  };
  const direction = str('direction') ?? 'outbound';
  if (direction !== 'outbound' && direction !== 'inbound') {
    throw badFlag('--direction', direction, 'is not a direction', 'use outbound (from the pod) or inbound (to the pod)');
  }
  const proto = str('proto') ?? 'tcp';
  if (proto !== 'tcp' && proto !== 'udp') throw badFlag('--proto', proto, 'is not supported', 'use tcp or udp');
  const state = str('state') ?? 'new';
  if (state !== 'new' && state !== 'established') throw badFlag('--state', state, 'is not a connection state', 'use new or established');
  const dportText = str('dport');
  if (dportText === undefined) throw badFlag('--dport', '', 'is required', 'give the destination port, e.g. --dport 8080');
  const dport = number('--dport', dportText, 65535, 'a port');
  const sport = number('--sport', str('sport') ?? '40000', 65535, 'a port');

  const given = { dst: str('dst'), src: str('src') };
  const dstGiven = given.dst !== undefined ? address('--dst', given.dst) : undefined;
  const srcGiven = given.src !== undefined ? address('--src', given.src) : undefined;
  const family: Family = (dstGiven ?? srcGiven)?.family === 6 ? 'ipv6' : 'ipv4';
  if (dstGiven && srcGiven && dstGiven.family !== srcGiven.family) {
    throw badFlag('--src', given.src!, `is IPv${srcGiven.family} but --dst ${given.dst} is IPv${dstGiven.family}`, 'give two addresses of the same family');
  }
  let dst = dstGiven;
  if (!dst) {
    if (direction === 'outbound') throw badFlag('--dst', '', 'is required for an outbound connection', 'give the address the app connects to, e.g. --dst 10.96.0.10');
    dst = podAddress(family);
    if (!dst) throw badFlag('--dst', '', 'is required: this namespace has no address to default to', "give the pod's address");
  }
  const loopbackDst = isLoopback(dst);
  let src = srcGiven;
  if (!src) {
    if (direction === 'inbound') src = parseIp(family === 'ipv4' ? '192.0.2.1' : '2001:db8::ffff')!;
    else if (loopbackDst) src = parseIp(family === 'ipv4' ? '127.0.0.1' : '::1')!;
    else {
      src = podAddress(family);
      if (!src) throw badFlag('--src', '', `is required: this namespace has no ${familyLabel(family)} address to default to`, "give the pod's address");
    }
  }
  const base = { direction, family, proto, src, dst, sport, dport, state, mark: number('--mark', str('mark') ?? '0', 0xffffffff, 'a mark'), ctmark: 0 } as const;
  if (direction === 'inbound') {
    for (const flag of ['uid', 'gid', 'out']) {
      if (values.has(flag)) throw badFlag(`--${flag}`, String(values.get(flag)), 'does not apply to an inbound packet', `drop --${flag}, or use --direction outbound`);
    }
    return { ...base, inIface: iface('--in', str('in') ?? 'eth0') };
  }
  if (values.has('in')) throw badFlag('--in', String(values.get('in')), 'does not apply to a locally generated packet', 'use --out, or --direction inbound');
  const uid = number('--uid', str('uid') ?? '0', 0xffffffff, 'a uid');
  const gid = number('--gid', str('gid') ?? String(uid), 0xffffffff, 'a gid');
  // A destination on this host is routed through lo, like loopback.
  const local = loopbackDst || localAddresses().some((a) => sameAddress(a, dst));
  return { ...base, uid, gid, outIface: iface('--out', str('out') ?? (local ? 'lo' : 'eth0')) };
}

function liveChoice(value: string | true | undefined): SourceName | undefined {
  if (value === undefined || value === true || value === 'auto') return undefined;
  if (value === 'legacy') return 'iptables-legacy';
  if (value === 'nft') return 'iptables-nft';
  if (value === 'nftables') return 'nftables';
  throw badFlag('--live', value, 'is not a rule source', 'use --live, --live=legacy, --live=nft or --live=nftables');
}

export const traceCommand: Command = defineCommand({
  name: 'trace',
  help: TRACE_HELP,
  async run({ argv, ctx }) {
    const { values, rest } = takeOwnFlags(argv, OWN);
    const sys = realSystem(ctx.env);
    const elsewhere = await reRunInRequestedNamespace(values, sys, 'trace', argv, ctx);
    if (elsewhere !== undefined) return elsewhere;
    const packet = buildPacket(values);
    const notes: string[] = [];
    let ruleset;
    let labels = DEFAULT_PORT_LABELS;
    if (values.has('live')) {
      const choice = liveChoice(values.get('live'));
      if (rest.length > 0) throw badFlag('--live', String(values.get('live')), `cannot be combined with configuration flags (${rest[0]})`, 'drop the istio-iptables flags, or drop --live to trace a configuration');
      const live = liveRuleset(await readIptablesOnly(sys), packet.family, choice);
      ruleset = live.ruleset;
      notes.push(...live.notes);
    } else {
      const config = parseCaptureConfig(rest, ctx.env, readHostFacts());
      ruleset = simRulesetFromConfig(buildRuleset(config), packet.family);
      labels = new Map([
        [config.proxyPort, 'the outbound proxy listener'],
        [config.inboundCapturePort, 'the inbound capture listener'],
        [DNS_AGENT_PORT, 'the DNS agent'],
      ]);
      if (packet.family === 'ipv6' && !config.ipv6.enabled) {
        notes.push(`this configuration writes no IPv6 rules (${config.ipv6.reason})`);
      }
      if (config.nativeNftables) notes.push('--native-nftables writes the same rules as nftables; the trace shows them in iptables form');
    }
    const result = simulate(ruleset, packet, labels);
    const withNotes = { ...result, warnings: [...notes, ...result.warnings] };
    ctx.stdout(values.has('json') ? `${JSON.stringify(traceJson(packet, withNotes), null, 2)}\n` : renderTraceText(packet, withNotes));
    return ExitCode.Ok;
  },
});

