/**
 * A rule as iptables-save prints it back (both backends print the same text):
 * addresses and interfaces first, implicit `-m tcp`, hex marks, expanded target
 * options. Comparing live rules with desired ones in this form makes a re-run a
 * true no-op. Pure; the kernel checks it in the integration tests.
 */
import { type Cidr, formatCidr, maskCidr } from '../net/ip.js';
import type { Match, Rule, Target } from '../rules/model.js';
import { renderIptablesTarget } from './iptables.js';

const hex = (n: number) => `0x${n.toString(16)}`;

/**
 * A prefix as iptables-save prints it (masked, with its length). Its inet_ntop
 * writes an IPv4-compatible address, ::/96 with a non-zero 7th word, with a
 * dotted tail: Istio's DNS golden `::127.0.0.53` comes back as
 * `::127.0.0.53/128`, not `::7f00:35/128` (checked with the real tools).
 */
export function saveFormCidr(cidr: Cidr): string {
  const masked = maskCidr(cidr);
  const b = masked.addr.bytes;
  if (b.length === 16 && b.slice(0, 12).every((x) => x === 0) && (b[12] !== 0 || b[13] !== 0)) {
    return `::${b[12]}.${b[13]}.${b[14]}.${b[15]}/${masked.prefix}`;
  }
  return formatCidr(masked);
}
const not = (negate: boolean | undefined) => (negate ? '! ' : '');

/** Resolves a group or user name to its number, as iptables does when adding the rule. */
export type IdResolver = (kind: 'uid' | 'gid', name: string) => string;

export const numericIds: IdResolver = (_kind, name) => name;

function moduleMatch(match: Match, resolveId: IdResolver): string | undefined {
  switch (match.kind) {
    case 'dport':
      return match.ports.length === 1
        ? `-m ${match.proto} ${not(match.negate)}--dport ${match.ports[0]}`
        : `-m multiport ${not(match.negate)}--dports ${match.ports.join(',')}`;
    case 'sport':
      return `-m ${match.proto} --sport ${match.port}`;
    case 'uidOwner':
      return `-m owner ${not(match.negate)}--uid-owner ${resolveId('uid', match.id)}`;
    case 'gidOwner':
      return `-m owner ${not(match.negate)}--gid-owner ${resolveId('gid', match.id)}`;
    case 'ctstate':
      return `-m conntrack --ctstate ${match.states.join(',')}`;
    case 'mark':
      return `-m mark ${not(match.negate)}--mark ${hex(match.mark)}`;
    case 'connmark':
      return `-m connmark --mark ${hex(match.mark)}`;
    default:
      return undefined;
  }
}

/** Targets whose options iptables-save expands or rewrites; the rest print as written. */
function target(t: Target, family: 'ipv4' | 'ipv6'): string {
  switch (t.kind) {
    case 'return':
    case 'accept':
    case 'drop':
    case 'jump':
    case 'ctZone':
      return renderIptablesTarget(t);
    case 'redirect':
      return `-j REDIRECT --to-ports ${t.port}`;
    case 'tproxy':
      return `-j TPROXY --on-port ${t.port} --on-ip ${family === 'ipv4' ? '0.0.0.0' : '::'} --tproxy-mark ${hex(t.mark)}/0xffffffff`;
    case 'setMark':
      return `-j MARK --set-xmark ${hex(t.mark)}/0xffffffff`;
    case 'saveMark':
      return '-j CONNMARK --save-mark --nfmask 0xffffffff --ctmask 0xffffffff';
    case 'restoreMark':
      return '-j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff';
  }
}

export function renderSaveSpec(rule: Rule, family: 'ipv4' | 'ipv6', resolveId: IdResolver = numericIds): string {
  const matches = rule.matches.filter((match) => match.only !== 'nft');
  const find = <K extends Match['kind']>(kind: K) => matches.find((match) => match.kind === kind) as Extract<Match, { kind: K }> | undefined;
  const parts: string[] = [];
  const src = find('src');
  const dst = find('dst');
  const inIface = find('inIface');
  const outIface = find('outIface');
  const proto = find('proto');
  if (src) parts.push(`${not(src.negate)}-s ${saveFormCidr(src.net.cidr)}`);
  if (dst) parts.push(`${not(dst.negate)}-d ${saveFormCidr(dst.net.cidr)}`);
  if (inIface) parts.push(`-i ${inIface.name}`);
  if (outIface) parts.push(`-o ${outIface.name}`);
  if (proto) parts.push(`-p ${proto.proto}`);
  for (const match of matches) {
    const text = moduleMatch(match, resolveId);
    if (text) parts.push(text);
  }
  parts.push(target(rule.target, family));
  return parts.join(' ');
}
