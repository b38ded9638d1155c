/**
 * Native nftables: one `nft -f -` transaction that creates or replaces Istio's
 * three inet tables, skipped when the live tables already equal the desired
 * ones, then read back and compared.
 */
import { readNftListing, readNftRulesetAndTables } from '../backend/nft-read.js';
import type { System } from '../backend/system.js';
import { toolFailure } from '../backend/tool-errors.js';
import { ExitCode, MeshcapError } from '../errors.js';
import type { Logger } from '../log.js';
import { MESH_NFT_TABLES } from '../rules/constants.js';
import type { NftListing, NftTableName } from '../state/nft-listing.js';
import { liveDifferences } from '../state/compare.js';
import { desiredListing, diffListings } from '../state/nft-view.js';

import type { Ruleset } from '../rules/model.js';
import { type NftTableOps, nftTableOps, renderChainDecl, renderNftCleanup, renderRuleOp, renderSetDecl } from '../render/nftables.js';

export interface NftRunOptions {
  readonly sys: System;
  readonly log: Logger;
  readonly nft: string;
  readonly force?: boolean;
}

/**
 * The transaction text. A table that exists with chains the config no longer has is
 * deleted and re-created in the same transaction (a flush would leave those chains).
 */
export function nftTransaction(ops: readonly NftTableOps[], live: NftListing): string {
  const lines: string[] = [];
  for (const name of MESH_NFT_TABLES) {
    const table = ops.find((o) => o.name === name);
    const existing = live.get(name);
    if (!table) {
      if (existing) lines.push(`add table inet ${name}`, `delete table inet ${name}`);
      continue;
    }
    // Chains and sets (listed as `set NAME`) the config no longer has: only a delete removes them.
    const wanted = new Set([...table.chains.map((decl) => decl.name), ...table.sets.map((set) => `set ${set.name}`)]);
    const staleChains = existing ? [...existing.keys()].some((chain) => !wanted.has(chain)) : false;
    lines.push(`add table inet ${name}`, staleChains ? `delete table inet ${name}` : `flush table inet ${name}`);
    if (staleChains) lines.push(`add table inet ${name}`);
    lines.push(
      ...table.chains.map((decl) => renderChainDecl(name, decl)),
      ...table.sets.flatMap((set) => renderSetDecl(name, set)),
      ...table.rules.map((op) => renderRuleOp(name, op)),
    );
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}

/** The live tables; a dry run sees none (it reads nothing, like Istio's). */
export const listNftables = (sys: System, nft: string): Promise<NftListing> => (sys.recording ? Promise.resolve(new Map()) : readNftListing(sys, nft));

const listLive = (opts: NftRunOptions) => listNftables(opts.sys, opts.nft);

export interface NftReconcileResult {
  readonly changed: boolean;
  readonly changes: string[];
  /** Every table of the namespace before the transaction (undefined in a dry run). */
  readonly tables?: readonly NftTableName[];
}

export async function reconcileNftables(ruleset: Ruleset, opts: NftRunOptions): Promise<NftReconcileResult> {
  const ops = nftTableOps(ruleset);
  const desired = desiredListing(ops);
  // All families at once: the same read tells whether iptables-nft has any table to look at.
  const first = opts.sys.recording ? undefined : await readNftRulesetAndTables(opts.sys, opts.nft);
  const live: NftListing = first?.listing ?? new Map();
  const tables = first ? { tables: first.tables } : {};
  const changes = diffListings(desired, live);
  if (changes.length === 0 && !opts.force) return { changed: false, changes, ...tables };
  const input = nftTransaction(ops, live);
  opts.log.debug(`nft transaction:\n${input}`);
  const result = await opts.sys.run(opts.nft, ['-f', '-'], { input });
  if (result.code !== 0) throw toolFailure(result, { action: `applying the nftables transaction with ${opts.nft}`, input });
  if (!opts.sys.recording) {
    const after = await listLive(opts);
    const differences = liveDifferences(ruleset, { kind: 'nftables', listing: after }, { desired: { nft: desired } });
    if (differences.length > 0) {
      throw new MeshcapError({
        exitCode: ExitCode.VerifyFailed,
        what: 'verifying the nftables tables after applying them',
        why: 'the tables read back are not the ones applied; something else rewrites them',
        fix: "compare with 'nft list ruleset inet'; find the other writer; re-run meshcap to reconcile",
        output: differences.join('\n'),
      });
    }
  }
  return { changed: true, changes, ...tables };
}

/** Deletes Istio's inet tables when present. */
export async function cleanNftables(opts: NftRunOptions): Promise<string[]> {
  const live = await listLive(opts);
  // A dry run cannot see the tables; like Istio it lists the removal of all three.
  const present = opts.sys.recording ? [...MESH_NFT_TABLES] : MESH_NFT_TABLES.filter((name) => live.has(name));
  if (present.length === 0) return [];
  const input = `${renderNftCleanup(present).join('\n')}\n`;
  const result = await opts.sys.run(opts.nft, ['-f', '-'], { input });
  if (result.code !== 0) throw toolFailure(result, { action: `deleting the mesh nftables tables with ${opts.nft}`, input });
  return present;
}
