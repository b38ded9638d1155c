/**
 * A rule as iptables-save prints it back (both backends print the same text):
 * addresses and interfaces first, implicit `-m tcp`, hex marks, expanded target
 * options. Comparing live rules with desired ones in this form makes a re-run a
 * true no-op. Pure; the kernel checks it in the integration tests.
 */
import { type Cidr, formatCidr, maskCidr } from '../net/ip.js';
import type { Match, Net, Rule, Target } from '../rules/model.js';
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
  if (masked.addr.family === 4) return formatCidr(masked);
  const b = masked.addr.bytes;
  if (b.length === 16 && b.slice(0, 12).every((x) => x === 0) && (b[12] !== 0 || b[13] !== 0)) {
    return `::${b[12]}.${b[13]}.${b[14]}.${b[15]}/${masked.prefix}`;
  }
  return formatCidr(masked);
}
/**
 * A net's save form without a new string where it is its own text: an IPv4 prefix already
 * masked prints as written (IPv4 text is canonical: no leading zeros), which is every
 * exclude of a long list.
 */
function saveFormNet(net: Net): string {
  const cidr = net.cidr;
  return cidr.addr.family === 4 && maskCidr(cidr) === cidr && net.text.indexOf('/') !== -1 ? net.text : saveFormCidr(cidr);
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
  // One pass for the leading matches (the first of each kind, as iptables-save orders them): this runs once per rule of a 5000-exclude ruleset.
  let src: Extract<Match, { kind: 'src' }> | undefined;
  let dst: Extract<Match, { kind: 'dst' }> | undefined;
  let inIface: Extract<Match, { kind: 'inIface' }> | undefined;
  let outIface: Extract<Match, { kind: 'outIface' }> | undefined;
  let proto: Extract<Match, { kind: 'proto' }> | undefined;
  let modules = '';
  // Indexed, as in renderIptablesRuleSpec.
  const matches = rule.matches;
  for (let i = 0; i < matches.length; i++) {
    const match = matches[i]!;
    if (match.only === 'nft') continue;
    if (match.kind === 'src') src ??= match;
    else if (match.kind === 'dst') dst ??= match;
    else if (match.kind === 'inIface') inIface ??= match;
    else if (match.kind === 'outIface') outIface ??= match;
    else if (match.kind === 'proto') proto ??= match;
    else {
      const text = moduleMatch(match, resolveId);
      if (text) modules += ` ${text}`;
    }
  }
  let spec = '';
  if (src) spec += ` ${not(src.negate)}-s ${saveFormNet(src.net)}`;
  if (dst) spec += ` ${not(dst.negate)}-d ${saveFormNet(dst.net)}`;
  if (inIface) spec += ` -i ${inIface.name}`;
  if (outIface) spec += ` -o ${outIface.name}`;
  if (proto) spec += ` -p ${proto.proto}`;
  return `${spec}${modules} ${target(rule.target, family)}`.slice(1);
}
