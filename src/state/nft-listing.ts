/**
 * Reads `nft list ruleset` text and normalises rules so that what nft prints
 * back (quoted names, hex marks, `meta skuid`, dropped /32, counters with
 * numbers) compares equal to what meshcap wrote. Pure.
 */
import { formatCidr, formatIp, maskCidr, parseCidr, parseIp } from '../net/ip.js';

export interface NftChainListing {
  /** Normalised `type X hook Y priority N`, or undefined for a regular chain. */
  readonly base?: string;
  readonly rules: string[];
}

export type NftListing = Map<string, Map<string, NftChainListing>>;

const PRIORITY_NAMES: Readonly<Record<string, number>> = { raw: -300, mangle: -150, dstnat: -100, filter: 0, security: 50, srcnat: 100 };

/**
 * A set as a listing entry keyed `set NAME` (--cidr-sets): its type line, then its
 * elements normalised and sorted, since nft lists them in its own order.
 */
export function setListing(type: string, interval: boolean, elements: readonly string[]): string[] {
  return [`type ${type}${interval ? ' flags interval' : ''}`, ...elements.map(normaliseNftRule).sort()];
}

/** A table as `nft list tables` (or a ruleset listing's headers) names it. */
export interface NftTableName {
  readonly family: string;
  readonly name: string;
}

/** Every table header in nft's output: `table ip nat`, `table inet istio-proxy-nat {`, ... */
export function parseNftTableNames(text: string): NftTableName[] {
  const names: NftTableName[] = [];
  for (const line of text.split('\n')) {
    const match = /^table (\S+) (\S+)(?: \{)?$/.exec(line.trim());
    if (match) names.push({ family: match[1]!, name: match[2]! });
  }
  return names;
}

/**
 * Tables of family inet, by name; chains by name, sets as `set NAME`.
 * `normalise` false: rule lines are kept as listed (see sameListing).
 */
export function parseNftListing(text: string, normalise = true): NftListing {
  const tables: NftListing = new Map();
  let table: Map<string, NftChainListing> | undefined;
  let chain: { base?: string; rules: string[] } | undefined;
  let set: { name: string; type: string; interval: boolean; elements: string[]; inElements: boolean } | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (set) {
      let rest = line;
      if (rest.startsWith('elements = {')) {
        set.inElements = true;
        rest = rest.slice('elements = {'.length);
      }
      if (set.inElements) {
        const closes = rest.endsWith('}');
        set.elements.push(...(closes ? rest.slice(0, -1) : rest).split(',').map((e) => e.trim()).filter(Boolean));
        if (closes) set.inElements = false;
      } else if (line === '}') {
        table?.set(`set ${set.name}`, { rules: setListing(set.type, set.interval, set.elements) });
        set = undefined;
      } else if (line.startsWith('type ')) set.type = line.slice(5).trim();
      else if (line.startsWith('flags ')) set.interval = line.slice(6).split(',').map((f) => f.trim()).includes('interval');
      continue;
    }
    // A header line ends with '{': the rule lines of a 5000-rule listing skip the header patterns.
    const header = line.endsWith('{');
    const setMatch = header ? /^set (\S+) \{$/.exec(line) : null;
    if (setMatch && table && !chain) {
      set = { name: setMatch[1]!, type: '', interval: false, elements: [], inElements: false };
      continue;
    }
    const tableMatch = header ? /^table inet (\S+) \{$/.exec(line) : null;
    if (tableMatch) {
      table = new Map();
      tables.set(tableMatch[1]!, table);
      continue;
    }
    const chainMatch = header ? /^chain (\S+) \{$/.exec(line) : null;
    if (chainMatch && table) {
      chain = { rules: [] };
      table.set(chainMatch[1]!, chain);
      continue;
    }
    if (line === '}') {
      if (chain) chain = undefined;
      else table = undefined;
      continue;
    }
    if (!chain || line === '') continue;
    const hook = line.startsWith('type ') ? /^type (\S+) hook (\S+) priority ([^;]+);/.exec(line) : null;
    if (hook) {
      chain.base = normaliseBase(hook[1]!, hook[2]!, hook[3]!.trim());
      continue;
    }
    chain.rules.push(normalise ? normaliseNftRule(line) : line);
  }
  return tables;
}

export function normaliseBase(type: string, hook: string, priority: string): string {
  const named = PRIORITY_NAMES[priority];
  const value = named ?? (/^-?\d+$/.test(priority) ? Number(priority) : priority);
  return `type ${type} hook ${hook} priority ${value}`;
}

/** A dotted-quad octet as net/ip.ts accepts it (no leading zeros). */
const OCTET = '(0|[1-9][0-9]?|1[0-9]{2}|2[0-4][0-9]|25[0-5])';
const IPV4_TOKEN = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}(?:/([0-9]|[12][0-9]|3[0-2]))?$`);

/** An IPv4 address or prefix, masked and without /32, in integer arithmetic (listings hold thousands). */
function normaliseIpv4Token(token: string): string | undefined {
  const m = IPV4_TOKEN.exec(token);
  if (!m) return undefined;
  const prefix = m[5] === undefined ? 32 : Number(m[5]);
  const value = ((Number(m[1]) << 24) | (Number(m[2]) << 16) | (Number(m[3]) << 8) | Number(m[4])) >>> 0;
  const masked = prefix === 0 ? 0 : (value & (~0 << (32 - prefix))) >>> 0;
  const text = `${masked >>> 24}.${(masked >>> 16) & 255}.${(masked >>> 8) & 255}.${masked & 255}`;
  return prefix === 32 ? text : `${text}/${prefix}`;
}

function normaliseAddressToken(token: string): string {
  if (!token.includes('.') && !token.includes(':')) return token;
  const v4 = normaliseIpv4Token(token);
  if (v4 !== undefined) return v4;
  if (token.includes('/')) {
    const cidr = parseCidr(token);
    if (!cidr) return token;
    const masked = maskCidr(cidr);
    return masked.prefix === masked.addr.bytes.length * 8 ? formatIp(masked.addr) : formatCidr(masked);
  }
  const address = token.startsWith(':') ? undefined : parseIp(token);
  return address ? formatIp(address) : token;
}

/**
 * One rule body in a form both our text and nft's listing reduce to. Each rewrite
 * runs only when its text is present: a 5000-rule listing is normalised twice per apply.
 */
export function normaliseNftRule(text: string): string {
  let s = text;
  if (s.includes('#')) s = s.replace(/\s+#.*$/, '');
  if (s.includes('counter packets')) s = s.replace(/counter packets \d+ bytes \d+/g, 'counter');
  if (s.includes('"')) s = s.replace(/"/g, '');
  if (s.includes('meta sk')) s = s.replace(/\bmeta (skuid|skgid)\b/g, '$1');
  if (s.includes('meta mark')) {
    s = s.replace(/\bct mark set meta mark\b/g, 'ct mark set mark').replace(/\bmeta mark (?!set\b)/g, 'mark ');
  }
  // nft drops a protocol match that a later port match already implies.
  if (s.includes('meta l4proto')) s = s.replace(/\bmeta l4proto (tcp|udp) (?=.*\b\1 (dport|sport)\b)/g, '');
  if (s.includes('0x')) s = s.replace(/\b0x([0-9a-f]+)\b/g, (_m, hex: string) => String(parseInt(hex, 16)));
  if (s.includes('ct state')) s = s.replace(/\bct state (\S+)/g, (_m, states: string) => `ct state ${states.split(',').sort().join(',')}`);
  // Addresses: nft prints them masked, without a full-length prefix, in canonical form.
  s = s.replace(ADDRESS_TOKEN, normaliseAddressToken);
  return /\s\s|^\s|\s$|[\t\n]/.test(s) ? s.replace(/\s+/g, ' ').trim() : s;
}

/** A space-separated token that may be an address or prefix (hex digits, dots, colons, a /length). */
const ADDRESS_TOKEN = /(?<=^| )[0-9a-fA-F.:]*[.:][0-9a-fA-F.:]*(?:\/[0-9]+)?(?= |$)/g;
