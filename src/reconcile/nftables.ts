/**
 * Native nftables: one `nft -f -` transaction that creates or replaces Istio's
 * three inet tables, skipped when the live tables already equal the desired
 * ones, then read back and compared.
 */
import { listNftRuleset, readNftListing } from '../backend/nft-read.js';
import type { System } from '../backend/system.js';
import { toolFailure } from '../backend/tool-errors.js';
import { ExitCode, MeshcapError } from '../errors.js';
import type { Logger } from '../log.js';
import type { EarlyWriter } from './early-writer.js';
import { MESH_NFT_TABLES } from '../rules/constants.js';
import { type NftListing, parseNftListing } from '../state/nft-listing.js';
import { liveDifferences } from '../state/compare.js';
import { desiredListing, diffListings, hasMeshTables, sameListing } from '../state/nft-view.js';

import type { Ruleset } from '../rules/model.js';
import { type NftTableOps, nftTableOps, renderChainDecl, renderNftCleanup, renderRuleOp, renderSetDecl } from '../render/nftables.js';

/** A transaction from which on nft runs in the background: a short one is done before that would pay (see restoreArgs's twin in iptables.ts). */
const BACKGROUND_INPUT = 32 * 1024;

export interface NftRunOptions {
  readonly sys: System;
  readonly log: Logger;
  readonly nft: string;
  /** `nft -f -` already started (startEarlyWriter): used for the transaction. */
  readonly writer?: EarlyWriter;
}

/** How a transaction is applied: read from stdin, atomically. */
export const NFT_APPLY_ARGS: readonly string[] = ['-f', '-'];

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
    for (const decl of table.chains) lines.push(renderChainDecl(name, decl));
    for (const set of table.sets) lines.push(...renderSetDecl(name, set));
    // No spread of 5000 rules into one call.
    for (const op of table.rules) lines.push(renderRuleOp(name, op));
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}

export interface NftPlan {
  /** `nft -f -` input; empty when the live tables already equal the desired ones. */
  readonly transaction: string;
  /** What differs, for logs. */
  readonly changes: readonly string[];
  /** The tables to write, as operations. */
  readonly ops: readonly NftTableOps[];
  /**
   * What the tables should list, which the read-back compares with (no second render of a
   * long ruleset); absent when no mesh table was live: a fresh apply needs it only for the
   * read-back, and applyNftPlan computes it while nft applies the transaction.
   */
  readonly desired?: NftListing;
}

/** The one transaction that makes the live tables the desired ones (`force`: even when they already are). Pure. */
export function planNftables(ruleset: Ruleset, live: NftListing, force = false): NftPlan {
  const ops = nftTableOps(ruleset);
  // No mesh table live (a fresh namespace): each wanted table is missing, and that is the
  // whole difference (what diffListings would say), known without the desired listing.
  const desired = hasMeshTables(live) ? desiredListing(ops) : undefined;
  const changes = desired
    ? diffListings(desired, live)
    : MESH_NFT_TABLES.filter((name) => ops.some((table) => table.name === name)).map((name) => `table inet ${name} is missing`);
  const transaction = changes.length === 0 && !force ? '' : nftTransaction(ops, live);
  return { transaction, changes, ops, ...(desired ? { desired } : {}) };
}

/**
 * The mesh tables a cleanup deletes. A listing that was not read (a dry run)
 * may hold any of them: like Istio, all three are listed then.
 */
export function nftTablesToDelete(live: NftListing | 'unknown'): string[] {
  return live === 'unknown' ? [...MESH_NFT_TABLES] : MESH_NFT_TABLES.filter((name) => live.has(name));
}

export function nftCleanupInput(tables: readonly string[]): string {
  return tables.length ? `${renderNftCleanup(tables).join('\n')}\n` : '';
}

/** Runs the plan's transaction, then reads the tables back and compares them with the ruleset. */
export async function applyNftPlan(ruleset: Ruleset, plan: NftPlan, opts: NftRunOptions): Promise<{ changed: boolean; changes: readonly string[] }> {
  if (plan.transaction === '') return { changed: false, changes: plan.changes };
  opts.log.debug(`nft transaction:\n${plan.transaction}`);
  // nft applies in the background while the read-back's expectation is made here: rules as
  // written, compared with rules as listed (sameListing), normalised only where they differ.
  const applying = opts.writer?.takes(opts.nft, NFT_APPLY_ARGS)
    ? opts.writer.write(plan.transaction)
    : opts.sys.run(opts.nft, NFT_APPLY_ARGS, { input: plan.transaction, background: plan.transaction.length >= BACKGROUND_INPUT });
  const expected = desiredListing(plan.ops, false);
  const result = await applying;
  if (result.code !== 0) throw toolFailure(result, { action: `applying the nftables transaction with ${opts.nft}`, input: plan.transaction });
  const read = await listNftRuleset(opts.sys, opts.nft);
  if (read.code !== 0) throw toolFailure(read, { action: `reading the nftables ruleset with ${opts.nft}` });
  if (sameListing(expected, parseNftListing(read.stdout, false))) return { changed: true, changes: plan.changes };
  // They differ: the normalised comparison says where.
  const differences = liveDifferences(ruleset, { kind: 'nftables', listing: parseNftListing(read.stdout) }, { desired: { nft: plan.desired ?? desiredListing(plan.ops) } });
  if (differences.length > 0) {
    throw new MeshcapError({
      exitCode: ExitCode.VerifyFailed,
      what: 'verifying the nftables tables after applying them',
      why: 'the tables read back are not the ones applied; something else rewrites them',
      fix: "compare with 'nft list ruleset inet'; find the other writer; re-run meshcap to reconcile",
      output: differences.join('\n'),
    });
  }
  return { changed: true, changes: plan.changes };
}

/** Deletes the mesh's inet tables that are present (read now, unless the caller already knows them). */
export async function cleanNftables(opts: NftRunOptions, present?: readonly string[]): Promise<string[]> {
  const tables = present ? [...present] : nftTablesToDelete(await readNftListing(opts.sys, opts.nft));
  const input = nftCleanupInput(tables);
  if (input === '') return [];
  const result = await opts.sys.run(opts.nft, ['-f', '-'], { input });
  if (result.code !== 0) throw toolFailure(result, { action: `deleting the mesh nftables tables with ${opts.nft}`, input });
  return tables;
}
