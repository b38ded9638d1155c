/**
 * The simulator's view of a ruleset: per table, chains of rules with typed
 * matches and targets (the ruleset model's own types, plus what a live
 * namespace may hold that meshcap never writes), and the packet it walks
 * through them. Pure data.
 */
import type { IpAddress } from '../net/ip.js';
import type { Family, Match, Protocol, Target } from '../rules/model.js';

export type Direction = 'outbound' | 'inbound';
/** Connection state of the traced packet: the first packet (NAT is decided) or a later one. */
export type ConnState = 'new' | 'established';

export type SimMatch =
  | Match
  /** A match meshcap does not model; the simulator treats it as not matching and says so. */
  | { readonly kind: 'unsupported'; readonly text: string };

export type SimTarget =
  | Target
  /** `-g CHAIN`: when CHAIN returns, the calling chain returns too. */
  | { readonly kind: 'goto'; readonly chain: string }
  /** A target meshcap does not model: non-terminating ones (LOG, CT --notrack) let the walk go on. */
  | { readonly kind: 'unsupported'; readonly text: string; readonly continues?: boolean };

export interface SimRule {
  /** The rule as the source spells it (save form, or the nft body). */
  readonly text: string;
  readonly matches: readonly SimMatch[];
  readonly target: SimTarget;
  readonly why?: string;
}

export interface SimChain {
  readonly rules: readonly SimRule[];
  /** Built-in chains only: what happens when the chain ends or RETURNs. */
  readonly policy?: 'ACCEPT' | 'DROP';
}

export type SimTableName = 'raw' | 'mangle' | 'nat' | 'filter';

/** One family's tables; chain names are iptables' (PREROUTING, ISTIO_OUTPUT, ...). */
export interface SimRuleset {
  readonly family: Family;
  /** Where the rules came from: "config", "iptables-nft (live)", ... */
  readonly source: string;
  readonly tables: ReadonlyMap<SimTableName, ReadonlyMap<string, SimChain>>;
}

export interface Packet {
  readonly direction: Direction;
  readonly family: Family;
  readonly proto: Protocol;
  readonly src: IpAddress;
  readonly dst: IpAddress;
  readonly sport: number;
  readonly dport: number;
  /** Owner of the sending socket (outbound only; inbound packets have no local socket). */
  readonly uid?: number;
  readonly gid?: number;
  readonly inIface?: string;
  readonly outIface?: string;
  readonly state: ConnState;
  readonly mark: number;
  readonly ctmark: number;
}
