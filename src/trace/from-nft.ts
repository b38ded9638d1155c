/**
 * Native nftables (Istio's `inet istio-proxy-*` tables, as `nft list ruleset`
 * prints them) -> the simulator's tables for one family. An inet table holds
 * both families: a rule with an `ip` address match only applies to IPv4
 * packets and one with `ip6` only to IPv6, so each family gets its own view.
 * Pure.
 */
import type { NftListing } from '../state/nft-listing.js';
import { formatCidr, parseCidr } from '../net/ip.js';
import { NftTable } from '../rules/constants.js';
import type { Family, Net, Protocol } from '../rules/model.js';
import type { SimChain, SimMatch, SimRule, SimRuleset, SimTableName, SimTarget } from './model.js';

const TABLE_OF: ReadonlyMap<string, SimTableName> = new Map([
  [NftTable.nat, 'nat'],
  [NftTable.mangle, 'mangle'],
  [NftTable.raw, 'raw'],
]);

/** prerouting -> PREROUTING, istio-in-redirect -> ISTIO_IN_REDIRECT: the names the trace prints for every backend. */
export function iptablesChainName(nftChain: string): string {
  return nftChain.toUpperCase().replaceAll('-', '_');
}

function toNet(text: string): Net | undefined {
  const cidr = parseCidr(text.includes('/') ? text : `${text}/${text.includes(':') ? 128 : 32}`);
  return cidr ? { cidr, text: formatCidr(cidr) } : undefined;
}

/** Reads `{ 53, 15008 }` or `53` starting at tokens[i]; returns the ports and the next index. */
function readPorts(tokens: readonly string[], i: number): { ports: number[]; next: number } | undefined {
  if (tokens[i] !== '{') return /^\d+$/.test(tokens[i] ?? '') ? { ports: [Number(tokens[i])], next: i + 1 } : undefined;
  const ports: number[] = [];
  let j = i + 1;
  for (; j < tokens.length && tokens[j] !== '}'; j++) {
    const value = tokens[j]!.replace(/,$/, '');
    if (!/^\d+$/.test(value)) return undefined;
    ports.push(Number(value));
  }
  return { ports, next: j + 1 };
}

/** One normalised rule body -> matches and target, and the family it is limited to, if any. */
export function parseNftBody(body: string): { matches: SimMatch[]; target: SimTarget; family?: Family } {
  const tokens = body.replace(/([{}])/g, ' $1 ').split(/\s+/).filter(Boolean);
  const matches: SimMatch[] = [];
  let target: SimTarget = { kind: 'unsupported', text: 'no verdict', continues: true };
  let family: Family | undefined;
  for (let i = 0; i < tokens.length; i++) {
    const word = tokens[i]!;
    const next = tokens[i + 1];
    const negate = next === '!=';
    const valueAt = negate ? i + 2 : i + 1;
    const value = tokens[valueAt];
    const rest = () => tokens.slice(i).join(' ');
    if (word === 'counter') continue;
    if ((word === 'iifname' || word === 'oifname') && value !== undefined && !negate) {
      matches.push({ kind: word === 'iifname' ? 'inIface' : 'outIface', name: value });
      i = valueAt;
    } else if ((word === 'ip' || word === 'ip6') && (next === 'saddr' || next === 'daddr')) {
      const negated = tokens[i + 2] === '!=';
      const text = tokens[negated ? i + 3 : i + 2] ?? '';
      const net = toNet(text);
      family = word === 'ip' ? 'ipv4' : 'ipv6';
      if (net) matches.push({ kind: next === 'saddr' ? 'src' : 'dst', net, negate: negated });
      else matches.push({ kind: 'unsupported', text: `${word} ${next} ${negated ? '!= ' : ''}${text}` });
      i = negated ? i + 3 : i + 2;
    } else if (word === 'meta' && next === 'l4proto' && (tokens[i + 2] === 'tcp' || tokens[i + 2] === 'udp')) {
      matches.push({ kind: 'proto', proto: tokens[i + 2] as Protocol });
      i += 2;
    } else if ((word === 'tcp' || word === 'udp') && (next === 'dport' || next === 'sport')) {
      const negated = tokens[i + 2] === '!=';
      const ports = readPorts(tokens, negated ? i + 3 : i + 2);
      if (!ports || (next === 'sport' && (negated || ports.ports.length !== 1))) {
        matches.push({ kind: 'unsupported', text: rest() });
        break;
      }
      matches.push(
        next === 'dport'
          ? { kind: 'dport', proto: word, ports: ports.ports, negate: negated }
          : { kind: 'sport', proto: word, port: ports.ports[0]! },
      );
      i = ports.next - 1;
    } else if ((word === 'skuid' || word === 'skgid') && value !== undefined) {
      matches.push({ kind: word === 'skuid' ? 'uidOwner' : 'gidOwner', id: value, negate });
      i = valueAt;
    } else if (word === 'ct' && next === 'state' && tokens[i + 2]) {
      matches.push({ kind: 'ctstate', states: tokens[i + 2]!.toUpperCase().split(',') as ('INVALID' | 'RELATED' | 'ESTABLISHED')[] });
      i += 2;
    } else if (word === 'mark' && value !== undefined && /^\d+$/.test(value)) {
      matches.push({ kind: 'mark', mark: Number(value), negate });
      i = valueAt;
    } else if (word === 'ct' && next === 'mark' && tokens[i + 2] !== 'set' && /^\d+$/.test(tokens[i + 2] ?? '')) {
      matches.push({ kind: 'connmark', mark: Number(tokens[i + 2]) });
      i += 2;
    } else {
      target = parseVerdict(tokens.slice(i));
      break;
    }
  }
  return family ? { matches, target, family } : { matches, target };
}

function parseVerdict(tokens: readonly string[]): SimTarget {
  const text = tokens.join(' ').replace(/\bcounter\b ?/g, '').trim();
  const port = (t: string | undefined) => (t && /^:\d+$/.test(t) ? Number(t.slice(1)) : undefined);
  let m: RegExpExecArray | null;
  if (text === 'return') return { kind: 'return' };
  if (text === 'accept') return { kind: 'accept' };
  if (text === 'drop') return { kind: 'drop' };
  if ((m = /^(jump|goto) (\S+)$/.exec(text))) return { kind: m[1] === 'jump' ? 'jump' : 'goto', chain: iptablesChainName(m[2]!) };
  if ((m = /^redirect to (:\d+)$/.exec(text))) return { kind: 'redirect', port: port(m[1])! };
  if ((m = /^tproxy (?:ip6? )?to (:\d+) meta mark set (\d+) accept$/.exec(text))) return { kind: 'tproxy', port: port(m[1])!, mark: Number(m[2]) };
  if ((m = /^meta mark set (\d+)$/.exec(text))) return { kind: 'setMark', mark: Number(m[1]) };
  if (text === 'ct mark set mark') return { kind: 'saveMark' };
  if (text === 'meta mark set ct mark') return { kind: 'restoreMark' };
  if ((m = /^ct zone set (\d+)$/.exec(text))) return { kind: 'ctZone', zone: Number(m[1]) };
  return { kind: 'unsupported', text, continues: !/\b(accept|drop|reject|jump|goto|return|redirect|dnat|snat|masquerade|queue|tproxy)\b/.test(text) };
}

export function simRulesetFromNft(listing: NftListing, family: Family, source: string): SimRuleset {
  const tables = new Map<SimTableName, Map<string, SimChain>>();
  for (const [name, chains] of listing) {
    const table = TABLE_OF.get(name);
    if (!table) continue;
    const out = new Map<string, SimChain>();
    for (const [chainName, chain] of chains) {
      const rules: SimRule[] = [];
      for (const body of chain.rules) {
        const parsed = parseNftBody(body);
        if (parsed.family && parsed.family !== family) continue;
        rules.push({ text: body, matches: parsed.matches, target: parsed.target });
      }
      out.set(iptablesChainName(chainName), chain.base ? { rules, policy: 'ACCEPT' } : { rules });
    }
    tables.set(table, out);
  }
  return { family, source, tables };
}
