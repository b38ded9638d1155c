/**
 * Native nftables: one `nft -f -` transaction that creates or replaces Istio's
 * three inet tables, skipped when the live tables already equal the desired
 * ones, then read back and compared.
 */
import { normaliseBase, normaliseNftRule, parseNftListing, type NftListing } from '../backend/nft-listing.js';
import type { System } from '../backend/system.js';
import { toolFailure } from '../backend/tool-errors.js';
import { ExitCode } from '../cli/exit-codes.js';
import type { Logger } from '../cli/log.js';
import { MeshcapError } from '../errors.js';
import { NftTable } from '../rules/constants.js';
import type { Ruleset } from '../rules/model.js';
import { type NftTableOps, nftTableOps, renderChainDecl, renderNftCleanup, renderRuleOp } from '../render/nftables.js';

const OUR_TABLES: readonly string[] = Object.values(NftTable);

export interface NftRunOptions {
  readonly sys: System;
  readonly log: Logger;
  readonly nft: string;
  readonly force?: boolean;
}

/** What the live tables should list after the transaction: inserts resolved, rules normalised. */
export function desiredListing(ops: readonly NftTableOps[]): NftListing {
  const listing: NftListing = new Map();
  for (const table of ops) {
    const chains = new Map<string, { base?: string; rules: string[] }>();
    for (const decl of table.chains) {
      const base = decl.base ? /^type (\S+) hook (\S+) priority (\S+)$/.exec(decl.base) : null;
      chains.set(decl.name, base ? { base: normaliseBase(base[1]!, base[2]!, base[3]!), rules: [] } : { rules: [] });
    }
    for (const op of table.rules) {
      const rules = chains.get(op.chain)!.rules;
      const body = normaliseNftRule(op.body);
      if (op.index === undefined) rules.push(body);
      else rules.splice(op.index, 0, body);
    }
    listing.set(table.name, chains);
  }
  return listing;
}

/** Differences between desired and live mesh tables; empty when equal. */
export function diffListings(desired: NftListing, live: NftListing): string[] {
  const lines: string[] = [];
  for (const name of OUR_TABLES) {
    const want = desired.get(name);
    const have = live.get(name);
    if (!want && !have) continue;
    if (!want) {
      lines.push(`table inet ${name} should not exist`);
      continue;
    }
    if (!have) {
      lines.push(`table inet ${name} is missing`);
      continue;
    }
    for (const chain of new Set([...want.keys(), ...have.keys()])) {
      const w = want.get(chain);
      const h = have.get(chain);
      if (!h) lines.push(`${name}: chain ${chain} is missing`);
      else if (!w) lines.push(`${name}: chain ${chain} should not exist`);
      else if (w.base !== h.base) lines.push(`${name}: chain ${chain} is '${h.base ?? 'regular'}', expected '${w.base ?? 'regular'}'`);
      else if (w.rules.join('\n') !== h.rules.join('\n')) {
        const wanted = new Set(w.rules);
        const present = new Set(h.rules);
        for (const rule of w.rules.filter((r) => !present.has(r))) lines.push(`${name}: ${chain}: missing    ${rule}`);
        for (const rule of h.rules.filter((r) => !wanted.has(r))) lines.push(`${name}: ${chain}: unexpected ${rule}`);
        if (!lines.some((l) => l.startsWith(`${name}: ${chain}:`))) lines.push(`${name}: ${chain}: rules in the wrong order`);
      }
    }
  }
  return lines;
}

/**
 * The transaction text. A table that exists with chains the config no longer has is
 * deleted and re-created in the same transaction (a flush would leave those chains).
 */
export function nftTransaction(ops: readonly NftTableOps[], live: NftListing): string {
  const lines: string[] = [];
  for (const name of OUR_TABLES) {
    const table = ops.find((o) => o.name === name);
    const existing = live.get(name);
    if (!table) {
      if (existing) lines.push(`add table inet ${name}`, `delete table inet ${name}`);
      continue;
    }
    const staleChains = existing ? [...existing.keys()].some((chain) => !table.chains.some((decl) => decl.name === chain)) : false;
    lines.push(`add table inet ${name}`, staleChains ? `delete table inet ${name}` : `flush table inet ${name}`);
    if (staleChains) lines.push(`add table inet ${name}`);
    lines.push(...table.chains.map((decl) => renderChainDecl(name, decl)), ...table.rules.map((op) => renderRuleOp(name, op)));
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}

/** The live inet tables (all of them; ours are picked by name). */
export async function listNftables(sys: System, nft: string): Promise<NftListing> {
  if (sys.recording) return new Map();
  const result = await sys.run(nft, ['list', 'ruleset', 'inet'], { largeOutput: true });
  if (result.code !== 0) throw toolFailure(result, { action: `reading the nftables ruleset with ${nft}` });
  return parseNftListing(result.stdout);
}

const listLive = (opts: NftRunOptions) => listNftables(opts.sys, opts.nft);

export async function reconcileNftables(ruleset: Ruleset, opts: NftRunOptions): Promise<{ changed: boolean; changes: string[] }> {
  const ops = nftTableOps(ruleset);
  const desired = desiredListing(ops);
  const live = await listLive(opts);
  const changes = diffListings(desired, live);
  if (changes.length === 0 && !opts.force) return { changed: false, changes };
  const input = nftTransaction(ops, live);
  opts.log.debug(`nft transaction:\n${input}`);
  const result = await opts.sys.run(opts.nft, ['-f', '-'], { input });
  if (result.code !== 0) throw toolFailure(result, { action: `applying the nftables transaction with ${opts.nft}`, input });
  if (!opts.sys.recording) {
    const after = await listLive(opts);
    const differences = diffListings(desired, after);
    if (differences.length > 0) {
      throw new MeshcapError(
        ExitCode.VerifyFailed,
        'verifying the nftables tables after applying them',
        'the tables read back are not the ones applied; something else rewrites them',
        "compare with 'nft list ruleset inet'; find the other writer; re-run meshcap to reconcile",
        differences.join('\n'),
      );
    }
  }
  return { changed: true, changes };
}

/** Deletes Istio's inet tables when present. */
export async function cleanNftables(opts: NftRunOptions): Promise<string[]> {
  const live = await listLive(opts);
  // A dry run cannot see the tables; like Istio it lists the removal of all three.
  const present = opts.sys.recording ? [...OUR_TABLES] : OUR_TABLES.filter((name) => live.has(name));
  if (present.length === 0) return [];
  const input = `${renderNftCleanup(present).join('\n')}\n`;
  const result = await opts.sys.run(opts.nft, ['-f', '-'], { input });
  if (result.code !== 0) throw toolFailure(result, { action: `deleting the mesh nftables tables with ${opts.nft}`, input });
  return present;
}

export function hasMeshTables(live: NftListing): boolean {
  return OUR_TABLES.some((name) => live.has(name));
}
