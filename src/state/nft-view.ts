/**
 * The nft listing a set of table operations should produce, and the
 * differences between two listings of the mesh's inet tables. Pure.
 */
import type { NftTableOps } from '../render/nftables.js';
import { MESH_NFT_TABLES } from '../rules/constants.js';
import { type NftListing, normaliseBase, normaliseNftRule, setListing } from './nft-listing.js';

/**
 * What the live tables should list after the transaction: inserts resolved, rules normalised
 * (`normalise` false: rules as written, see sameListing).
 */
export function desiredListing(ops: readonly NftTableOps[], normalise = true): NftListing {
  const listing: NftListing = new Map();
  for (const table of ops) {
    const chains = new Map<string, { base?: string; rules: string[] }>();
    for (const decl of table.chains) {
      const base = decl.base ? /^type (\S+) hook (\S+) priority (\S+)$/.exec(decl.base) : null;
      chains.set(decl.name, base ? { base: normaliseBase(base[1]!, base[2]!, base[3]!), rules: [] } : { rules: [] });
    }
    for (const set of table.sets) chains.set(`set ${set.name}`, { rules: setListing(set.type, set.interval, set.elements) });
    for (const op of table.rules) {
      const rules = chains.get(op.chain)!.rules;
      const body = normalise ? normaliseNftRule(op.body) : op.body;
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
  for (const name of MESH_NFT_TABLES) {
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
        // Sets, not includes(): a re-run that changes 5000 excludes must not compare 5000 x 5000.
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
 * Do the live mesh tables equal the desired ones? Both listings hold rules as written
 * and as listed (parseNftListing / desiredListing with `normalise` false): a rule is
 * normalised only where the two texts differ, since equal texts normalise equally.
 * Written and listed alike is the common case (every exclude rule), so a 5000-rule
 * read-back is not normalised twice. True exactly when diffListings of the normalised
 * listings finds nothing.
 */
export function sameListing(desired: NftListing, live: NftListing): boolean {
  for (const name of MESH_NFT_TABLES) {
    const want = desired.get(name);
    const have = live.get(name);
    if (!want || !have) {
      if (want || have) return false;
      continue;
    }
    if (want.size !== have.size) return false;
    for (const [chain, w] of want) {
      const h = have.get(chain);
      if (!h || w.base !== h.base || w.rules.length !== h.rules.length) return false;
      for (let i = 0; i < w.rules.length; i++) {
        const a = w.rules[i]!;
        const b = h.rules[i]!;
        if (a !== b && normaliseNftRule(a) !== normaliseNftRule(b)) return false;
      }
    }
  }
  return true;
}

/** Does a listing hold any of the mesh's tables? */
export function hasMeshTables(live: NftListing): boolean {
  return MESH_NFT_TABLES.some((name) => live.has(name));
}
