/**
 * Live rules against the rules a ruleset asks for: the one comparison behind
 * reconcile's read-back, `meshcap verify` and `meshcap status` (drift and the
 * round trip of derived flags). Pure.
 */
import { nftTableOps } from '../render/nftables.js';
import type { IdResolver } from '../render/iptables-save-form.js';
import { type Family, type Ruleset, familyLabel, rulesForFamily } from '../rules/model.js';
import { parseSave } from './iptables-save.js';
import type { Variant } from './iptables-variant.js';
import { type StateView, currentView, desiredView, diffViews } from './iptables-view.js';
import type { NftListing } from './nft-listing.js';
import { desiredListing, diffListings } from './nft-view.js';

/** The rules one backend holds, as read. */
export type LiveRules =
  | { readonly kind: 'nftables'; readonly listing: NftListing }
  | {
      readonly kind: 'iptables';
      readonly variant: Variant;
      /** `*-save` output per family; missing when it could not be read. */
      readonly saves: Partial<Record<Family, string>>;
    };

export interface CompareOptions {
  /** iptables families to compare (default both). */
  readonly families?: readonly Family[];
  /** A family that could not be read: one line saying so (default), or compared as empty. */
  readonly unreadable?: 'report' | 'empty';
  readonly resolveId?: IdResolver;
  /** `table/chain` mesh chains kept (flushed) on purpose because a foreign rule still jumps to them. */
  readonly keptChains?: readonly string[];
  /**
   * What the ruleset renders to, when the caller has it already (reconcile planned with
   * it): the read-back then does not render 5000 rules a second time.
   */
  readonly desired?: { readonly nft?: NftListing; readonly views?: Partial<Record<Family, StateView>> };
}

/** Differences, one line each (iptables lines start with the family); empty when the live rules are the desired ones. */
export function liveDifferences(ruleset: Ruleset, live: LiveRules, options: CompareOptions = {}): string[] {
  if (live.kind === 'nftables') return diffListings(options.desired?.nft ?? desiredListing(nftTableOps(ruleset)), live.listing);
  const lines: string[] = [];
  for (const family of options.families ?? (['ipv4', 'ipv6'] as const)) {
    let text = live.saves[family];
    if (text === undefined) {
      if ((options.unreadable ?? 'report') === 'report') {
        lines.push(`${family}: the rules could not be read with iptables-${live.variant}-save`);
        continue;
      }
      text = '';
    }
    const desired = options.desired?.views?.[family] ?? desiredView(rulesForFamily(ruleset, family), family, options.resolveId);
    const differences = diffViews(desired, withoutKeptChains(currentView(parseSave(text)), options.keptChains ?? []));
    lines.push(...differences.map((line) => `${familyLabel(family)} ${line}`));
  }
  return lines;
}

function withoutKeptChains(view: StateView, kept: readonly string[]): StateView {
  if (kept.length === 0) return view;
  return new Map(
    [...view].map(([table, tableView]) => [
      table,
      { ...tableView, meshChains: new Map([...tableView.meshChains].filter(([chain]) => !kept.includes(`${table}/${chain}`))) },
    ]),
  );
}
