/** Which of a namespace's rule sources holds the mesh's rules, and the simulator's view of one. Pure. */
import { MESH_NFT_TABLES } from '../rules/constants.js';
import type { Family } from '../rules/model.js';
import type { LiveRules } from '../state/compare.js';
import { parseSave } from '../state/iptables-save.js';
import { parseNftListing } from '../state/nft-listing.js';
import { countMeshRules } from '../state/ownership.js';
import { simRulesetFromNft } from '../trace/from-nft.js';
import { simRulesetFromSave } from '../trace/from-save.js';
import type { SimRuleset } from '../trace/model.js';
import type { NamespaceRead } from './gather.js';

export type SourceName = 'iptables-legacy' | 'iptables-nft' | 'nftables';
export const SOURCES: readonly SourceName[] = ['iptables-legacy', 'iptables-nft', 'nftables'];

/** Mesh rules per source (both families for iptables; rules in our inet tables for nftables). */
export function meshRuleCounts(read: Pick<NamespaceRead, 'legacy' | 'nft' | 'nftables'>): Record<SourceName, number> {
  const iptables = (saves: Partial<Record<Family, string>>) =>
    Object.values(saves).reduce((sum, text) => sum + countMeshRules(parseSave(text ?? '')), 0);
  let nft = 0;
  for (const [name, chains] of parseNftListing(read.nftables ?? '')) {
    if (MESH_NFT_TABLES.includes(name)) for (const chain of chains.values()) nft += chain.rules.length;
  }
  return { 'iptables-legacy': iptables(read.legacy.saves), 'iptables-nft': iptables(read.nft.saves), nftables: nft };
}

/** One source's rules, in the form the comparison reads. */
export function liveRulesOf(read: Pick<NamespaceRead, 'legacy' | 'nft' | 'nftables'>, source: SourceName): LiveRules {
  if (source === 'nftables') return { kind: 'nftables', listing: parseNftListing(read.nftables ?? '') };
  const ipt = source === 'iptables-legacy' ? read.legacy : read.nft;
  return { kind: 'iptables', variant: ipt.variant, saves: ipt.saves };
}

export function liveRuleset(
  read: Pick<NamespaceRead, 'legacy' | 'nft' | 'nftables'>,
  family: Family,
  choice?: SourceName,
): { ruleset: SimRuleset; notes: string[] } {
  const counts = meshRuleCounts(read);
  const holding = SOURCES.filter((source) => counts[source] > 0);
  const notes: string[] = [];
  let source: SourceName;
  if (choice) {
    source = choice;
    if (counts[choice] === 0) notes.push(`${choice} holds no mesh rules in this namespace`);
  } else if (holding.length === 0) {
    source = read.nft.saves[family] ? 'iptables-nft' : 'iptables-legacy';
    notes.push('no mesh rules in any backend: nothing captures this connection');
  } else {
    source = holding.reduce((best, s) => (counts[s] > counts[best] ? s : best), holding[0]!);
  }
  if (holding.length > 1) {
    notes.push(`mesh rules exist in ${holding.join(' and ')}; the kernel runs all of them, this trace follows ${source} only (pick another with --live=${holding.find((s) => s !== source)!.replace('iptables-', '')})`);
  }
  const shown = `${source} (live, ${counts[source]} mesh rules)`;
  if (source === 'nftables') return { ruleset: simRulesetFromNft(parseNftListing(read.nftables ?? ''), family, shown), notes };
  const text = (source === 'iptables-legacy' ? read.legacy : read.nft).saves[family] ?? '';
  return { ruleset: simRulesetFromSave(text, family, shown), notes };
}
