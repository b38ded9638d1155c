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

/** Tables of family inet, by name; chains by name, sets as `set NAME`. */
export function parseNftListing(text: string): NftListing {
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
    const setMatch = /^set (\S+) \{$/.exec(line);
    if (setMatch && table && !chain) {
      set = { name: setMatch[1]!, type: '', interval: false, elements: [], inElements: false };
      continue;
    }
    const tableMatch = /^table inet (\S+) \{$/.exec(line);
    if (tableMatch) {
      table = new Map();
      tables.set(tableMatch[1]!, table);
      continue;
    }
    const chainMatch = /^chain (\S+) \{$/.exec(line);
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
    const hook = /^type (\S+) hook (\S+) priority ([^;]+);/.exec(line);
    if (hook) {
      chain.base = normaliseBase(hook[1]!, hook[2]!, hook[3]!.trim());
      continue;
    }
    chain.rules.push(normaliseNftRule(line));
  }
  return tables;
}

export function normaliseBase(type: string, hook: string, priority: string): string {
  const named = PRIORITY_NAMES[priority];
  const value = named ?? (/^-?\d+$/.test(priority) ? Number(priority) : priority);
  return `type ${type} hook ${hook} priority ${value}`;
}

/** One rule body in a form both our text and nft's listing reduce to. */
export function normaliseNftRule(text: string): string {
  let s = text
    .replace(/\s+#.*$/, '')
    .replace(/counter packets \d+ bytes \d+/g, 'counter')
    .replace(/"/g, '')
    .replace(/\bmeta (skuid|skgid)\b/g, '$1')
    .replace(/\bct mark set meta mark\b/g, 'ct mark set mark')
    .replace(/\bmeta mark (?!set\b)/g, 'mark ')
    // nft drops a protocol match that a later port match already implies.
    .replace(/\bmeta l4proto (tcp|udp) (?=.*\b\1 (dport|sport)\b)/g, '')
    .replace(/\b0x([0-9a-f]+)\b/g, (_m, hex: string) => String(parseInt(hex, 16)));
  s = s.replace(/\bct state (\S+)/g, (_m, states: string) => `ct state ${states.split(',').sort().join(',')}`);
  // Addresses: nft prints them masked, without a full-length prefix, in canonical form.
  s = s
    .split(' ')
    .map((token) => {
      if (token.includes('/')) {
        const cidr = parseCidr(token);
        if (!cidr) return token;
        const masked = maskCidr(cidr);
        return masked.prefix === masked.addr.bytes.length * 8 ? formatIp(masked.addr) : formatCidr(masked);
      }
      const address = /[.:]/.test(token) && !token.startsWith(':') ? parseIp(token) : undefined;
      return address ? formatIp(address) : token;
    })
    .join(' ');
  return s.replace(/\s+/g, ' ').trim();
}
