/** Reads the live nftables inet tables: the one `nft list ruleset inet` of the engine, verify and status. */
import { type NftListing, parseNftListing } from '../state/nft-listing.js';
import type { RunResult, System } from './system.js';
import { toolFailure } from './tool-errors.js';

/** The raw read, for callers that report a failure as a fact rather than an error (status). */
export function listNftRuleset(sys: System, nft: string): Promise<RunResult> {
  // nft writes a listing unbuffered, a write() per token: a scratch file, not a socketpair (see RunOptions).
  return sys.run(nft, ['list', 'ruleset', 'inet'], { largeOutput: true });
}

/** The live inet tables (all of them; the mesh's are picked by name); a failed read is an error naming the fix. */
export async function readNftListing(sys: System, nft: string): Promise<NftListing> {
  const result = await listNftRuleset(sys, nft);
  if (result.code !== 0) throw toolFailure(result, { action: `reading the nftables ruleset with ${nft}` });
  return parseNftListing(result.stdout);
}
