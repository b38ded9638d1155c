/**
 * Checks derived flags by building their rules and comparing them with the
 * live ones: equal means the derivation is exact. Pure (fixed host facts:
 * derived flags name everything host facts would otherwise supply).
 */
import { parseNftListing } from '../backend/nft-listing.js';
import { parseSave } from '../backend/save.js';
import { parseCaptureConfig } from '../config/parse.js';
import type { HostFacts } from '../config/types.js';
import { desiredListing, diffListings } from '../reconcile/nftables.js';
import { currentView, desiredView, diffViews } from '../reconcile/plan.js';
import { nftTableOps } from '../render/nftables.js';
import { buildRuleset } from '../rules/build.js';
import { rulesForFamily } from '../rules/model.js';
import { type DerivedConfig, derivedArgs } from './derive.js';
import type { NamespaceRead } from './gather.js';
import type { SourceName } from './sources.js';

const NO_FACTS: HostFacts = { interfaceAddresses: () => [], resolvConf: () => '', lookupUid: () => undefined };

export function roundTrip(read: NamespaceRead, derived: DerivedConfig, source: SourceName): string[] | undefined {
  let ruleset;
  try {
    const args = [...derivedArgs(derived), ...(source === 'nftables' ? ['--native-nftables'] : [])];
    ruleset = buildRuleset(parseCaptureConfig(args, derived.env, NO_FACTS));
  } catch {
    return undefined;
  }
  if (source === 'nftables') return diffListings(desiredListing(nftTableOps(ruleset)), parseNftListing(read.nftables ?? ''));
  const saves = (source === 'iptables-legacy' ? read.legacy : read.nft).saves;
  return (['ipv4', 'ipv6'] as const).flatMap((family) =>
    diffViews(desiredView(rulesForFamily(ruleset, family), family), currentView(parseSave(saves[family] ?? ''))),
  );
}
