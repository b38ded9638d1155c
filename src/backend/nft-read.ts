/** Reads the live nftables inet tables: the one `nft list ruleset inet` of the engine, verify and status. */
import { type NftListing, type NftTableName, parseNftListing, parseNftTableNames } from '../state/nft-listing.js';
import type { RunOptions, RunResult, System } from './system.js';
import { toolFailure } from './tool-errors.js';

/**
 * The names of all tables, every family (`nft list tables`): the cheap fact that
 * decides which reads an apply needs. iptables-nft keeps its rules in `ip` and
 * `ip6` tables, so where none exists its save has nothing to show; native mesh
 * tables are `inet istio-proxy-*`. Undefined when nft cannot answer (no
 * nf_tables): then the callers read everything, as before.
 */
export async function listNftTableNames(sys: System, nft: string, options: RunOptions = {}): Promise<NftTableName[] | undefined> {
  const result = await sys.run(nft, ['list', 'tables'], options);
  return result.code === 0 ? parseNftTableNames(result.stdout) : undefined;
}

/**
 * Every family's ruleset in one read: the inet tables parsed, plus the names of all
 * tables (for SnapshotHints), so a native apply needs no separate look at iptables-nft.
 */
export async function readNftRulesetAndTables(sys: System, nft: string, options: RunOptions = {}): Promise<{ listing: NftListing; tables: NftTableName[] }> {
  const result = await sys.run(nft, ['list', 'ruleset'], { ...options, largeOutput: true });
  if (result.code !== 0) throw toolFailure(result, { action: `reading the nftables ruleset with ${nft}` });
  return { listing: parseNftListing(result.stdout), tables: parseNftTableNames(result.stdout) };
}

/** The raw read, for callers that report a failure as a fact rather than an error (status). */
export function listNftRuleset(sys: System, nft: string): Promise<RunResult> {
  // nft writes a listing unbuffered, a write() per token: a scratch file, not a socketpair (see RunOptions).
  // -s (stateless): no packet and byte counts, which every reader drops anyway; ~15% fewer writes at 5000 rules.
  return sys.run(nft, ['-s', 'list', 'ruleset', 'inet'], { largeOutput: true });
}

/** The live inet tables (all of them; the mesh's are picked by name); a failed read is an error naming the fix. */
export async function readNftListing(sys: System, nft: string): Promise<NftListing> {
  const result = await listNftRuleset(sys, nft);
  if (result.code !== 0) throw toolFailure(result, { action: `reading the nftables ruleset with ${nft}` });
  return parseNftListing(result.stdout);
}
