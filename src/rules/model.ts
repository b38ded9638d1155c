/**
 * The ruleset as data: tables, chains and rules with typed matches and targets.
 * Renderers turn it into iptables-restore text or an nft transaction; trace and
 * explain read it directly. All names and fixed numbers live in `constants.ts`.
 */
import type { Cidr } from '../net/ip.js';

export type Table = 'filter' | 'mangle' | 'nat' | 'raw';
export type Family = 'ipv4' | 'ipv6';
/** Which iptables family a rule belongs to; `both` is written to each enabled family. */
export type FamilyScope = 'both' | Family;
export type Protocol = 'tcp' | 'udp';

/** Backend in which a match is spelled out (see Match.only). */
export type Spelling = 'iptables' | 'nft';

/** A prefix and the exact text Istio prints for it (verbatim for env and resolv.conf values). */
export interface Net {
  readonly cidr: Cidr;
  readonly text: string;
}

export type Match = (
  | { readonly kind: 'inIface'; readonly name: string }
  | { readonly kind: 'outIface'; readonly name: string }
  | { readonly kind: 'src'; readonly net: Net; readonly negate?: boolean }
  | { readonly kind: 'dst'; readonly net: Net; readonly negate?: boolean }
  | { readonly kind: 'proto'; readonly proto: Protocol }
  | { readonly kind: 'dport'; readonly proto: Protocol; readonly ports: readonly number[]; readonly negate?: boolean }
  | { readonly kind: 'sport'; readonly proto: Protocol; readonly port: number }
  | { readonly kind: 'uidOwner'; readonly id: string; readonly negate?: boolean }
  | { readonly kind: 'gidOwner'; readonly id: string; readonly negate?: boolean }
  | { readonly kind: 'ctstate'; readonly states: readonly ('INVALID' | 'RELATED' | 'ESTABLISHED')[] }
  | { readonly kind: 'mark'; readonly mark: number; readonly negate?: boolean }
  | { readonly kind: 'connmark'; readonly mark: number }
) & {
  /**
   * Spelled in one backend only. Istio's two builders differ here: nft writes
   * `meta l4proto tcp` where iptables has no `-p tcp` (drop-invalid), and omits
   * it where `tcp dport` already implies it.
   */
  readonly only?: Spelling;
};

export type Target =
  | { readonly kind: 'return' }
  | { readonly kind: 'accept' }
  | { readonly kind: 'drop' }
  | { readonly kind: 'jump'; readonly chain: string }
  /** `--to-port` vs `--to-ports`: Istio spells UDP DNS with the singular form. */
  | { readonly kind: 'redirect'; readonly port: number; readonly singular?: boolean }
  | { readonly kind: 'tproxy'; readonly port: number; readonly mark: number }
  | { readonly kind: 'setMark'; readonly mark: number }
  | { readonly kind: 'saveMark' }
  | { readonly kind: 'restoreMark' }
  | { readonly kind: 'ctZone'; readonly zone: number };

export interface Rule {
  readonly table: Table;
  readonly chain: string;
  readonly family: FamilyScope;
  /** iptables `-I CHAIN n` position (1-based); append when absent. */
  readonly insertAt?: number;
  readonly matches: readonly Match[];
  readonly target: Target;
  /** Why the rule exists, in plain words (explain, trace). */
  readonly why: string;
}

export interface Ruleset {
  readonly ipv6: boolean;
  /**
   * The native nftables renderer writes runs of excluded destinations and ports as
   * one set lookup each (--cidr-sets); the rules themselves, and iptables, are unchanged.
   */
  readonly nftSets?: boolean;
  /** In builder order, which is the order Istio emits them. */
  readonly rules: readonly Rule[];
}

export const TABLE_ORDER: readonly Table[] = ['filter', 'mangle', 'nat', 'raw'];

export const BUILTIN_CHAINS = new Set(['INPUT', 'OUTPUT', 'FORWARD', 'PREROUTING', 'POSTROUTING']);

/** Rules for one iptables family, in order (v6 only when enabled). */
export function rulesForFamily(ruleset: Ruleset, family: Family): readonly Rule[] {
  if (family === 'ipv6' && !ruleset.ipv6) return [];
  // Remembered per ruleset: planning, rendering and the read-back each ask, and a long exclude list makes each pass count.
  let families = FAMILY_RULES.get(ruleset);
  if (!families) FAMILY_RULES.set(ruleset, (families = {}));
  return (families[family] ??= ruleset.rules.filter((rule) => rule.family === 'both' || rule.family === family));
}

const FAMILY_RULES = new WeakMap<Ruleset, Partial<Record<Family, readonly Rule[]>>>();

/** How a family is named in messages. */
export function familyLabel(family: Family): 'IPv4' | 'IPv6' {
  return family === 'ipv4' ? 'IPv4' : 'IPv6';
}
