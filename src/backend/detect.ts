/**
 * Picks the iptables backend without side effects. Reading
 * /proc/net/ip_tables_names and running `-save` create nothing; Istio's probe
 * rule in `nat` primes the legacy table and makes the next run pick legacy
 * (istio#61020), so there is no probe here.
 *
 * Order: pinned choice; the backend that holds mesh rules; the backend that
 * holds any rules; nft when the kernel speaks nf_tables; else legacy.
 */
import type { BackendChoice } from '../config/types.js';
import { countRules, parseSave } from '../state/iptables-save.js';
import type { Variant } from '../state/iptables-variant.js';
import { countMeshRules } from '../state/ownership.js';
import type { Family } from '../rules/model.js';
import { type IptablesBinaries, resolveBinaries } from './binaries.js';
import type { System } from './system.js';
import type { NftTableName } from '../state/nft-listing.js';

export interface BackendSnapshot {
  readonly variant: Variant;
  readonly binaries: Partial<Record<Family, IptablesBinaries>>;
  /** Save output per family; missing when the family could not be read. */
  readonly saves: Partial<Record<Family, string>>;
  readonly meshRules: number;
  readonly allRules: number;
  /** The backend can be used at all (binaries present, save works). */
  readonly usable: boolean;
  readonly problem?: string;
}

export interface Detection {
  readonly chosen: BackendSnapshot;
  readonly reason: string;
  /** The other backend, when it is usable (its mesh rules are removed if any). */
  readonly other?: BackendSnapshot;
  /** Neither backend has binaries on PATH. */
  readonly noBinaries: boolean;
}

const FAMILIES: readonly Family[] = ['ipv4', 'ipv6'];

/**
 * What is already known about the namespace. `nftTables`: every nf_tables table
 * (`nft list tables`); with it, iptables-nft's save is skipped for a family
 * that has no table at all (it would print nothing), which is what a fresh pod
 * namespace and every IPv4-only pod's IPv6 side look like.
 */
export interface SnapshotHints {
  /** May still be read: the binaries are looked up meanwhile, and it is awaited only where it decides. */
  readonly nftTables?: readonly NftTableName[] | Promise<readonly NftTableName[] | undefined>;
}

const NFT_FAMILY: Record<Family, string> = { ipv4: 'ip', ipv6: 'ip6' };

export async function snapshotBackend(sys: System, variant: Variant, hints: SnapshotHints = {}): Promise<BackendSnapshot> {
  const binaries: Partial<Record<Family, IptablesBinaries>> = {};
  const saves: Partial<Record<Family, string>> = {};
  let problem: string | undefined;
  await Promise.all(
    FAMILIES.map(async (family) => {
      const bins = await resolveBinaries(sys, variant, family);
      if (!bins) return;
      binaries[family] = bins;
      if (variant === 'legacy') {
        // No legacy table exists: nothing to read, and reading must not create one.
        const names = sys.readFile(family === 'ipv4' ? '/proc/net/ip_tables_names' : '/proc/net/ip6_tables_names');
        if (names !== undefined && names.trim() === '') {
          saves[family] = '';
          return;
        }
      } else {
        const tables = await hints.nftTables;
        if (tables && !tables.some((table) => table.family === NFT_FAMILY[family])) {
          saves[family] = '';
          return;
        }
      }
      const result = await sys.run(bins.save, []);
      if (result.code === 0) saves[family] = result.stdout;
      else if (family === 'ipv4') problem = `${bins.save} failed: ${result.stderr.trim() || `exit ${result.code}`}`;
    }),
  );
  const states = Object.values(saves).map((text) => parseSave(text ?? ''));
  return {
    variant,
    binaries,
    saves,
    meshRules: states.reduce((sum, state) => sum + countMeshRules(state), 0),
    allRules: states.reduce((sum, state) => sum + countRules(state), 0),
    usable: binaries.ipv4 !== undefined && saves.ipv4 !== undefined,
    ...(problem ? { problem } : binaries.ipv4 ? {} : { problem: `no iptables-${variant} binaries on PATH` }),
  };
}

export async function detectBackend(sys: System, choice: BackendChoice, pinnedBy: string, hints: SnapshotHints = {}): Promise<Detection> {
  const [legacy, nft] = await Promise.all([snapshotBackend(sys, 'legacy'), snapshotBackend(sys, 'nft', hints)]);
  return chooseBackend(legacy, nft, choice, pinnedBy);
}

/** The precedence, given what each backend holds. Pure. */
export function chooseBackend(legacy: BackendSnapshot, nft: BackendSnapshot, choice: BackendChoice, pinnedBy: string): Detection {
  const of = (variant: Variant) => (variant === 'legacy' ? legacy : nft);
  const pick = (variant: Variant, reason: string): Detection => {
    const other = of(variant === 'legacy' ? 'nft' : 'legacy');
    const noBinaries = !legacy.binaries.ipv4 && !nft.binaries.ipv4;
    return { chosen: of(variant), reason, noBinaries, ...(other.usable ? { other } : {}) };
  };

  if (choice !== 'auto') return pick(choice, `pinned by ${pinnedBy}`);
  // Legacy tables exist but reading them was refused (no CAP_NET_RAW): they may hold the
  // capture, and writing to nft blind would capture twice. Choosing legacy lets the
  // capability check say what is missing.
  if (!legacy.usable && legacy.binaries.ipv4 && /Permission denied|you must be root/i.test(legacy.problem ?? '')) {
    return pick('legacy', `iptables-legacy tables exist in this namespace and reading them needs it (${legacy.problem})`);
  }
  if (legacy.meshRules > 0 && nft.meshRules === 0) return pick('legacy', `iptables-legacy already holds ${legacy.meshRules} mesh rules`);
  if (nft.meshRules > 0 && legacy.meshRules === 0) return pick('nft', `iptables-nft already holds ${nft.meshRules} mesh rules`);
  if (nft.meshRules > 0 && legacy.meshRules > 0) {
    const variant = nft.allRules >= legacy.allRules ? 'nft' : 'legacy';
    return pick(variant, `both backends hold mesh rules; ${variant} holds more rules overall, so it is kept and the other is cleaned`);
  }
  const legacyOther = legacy.allRules - legacy.meshRules;
  const nftOther = nft.allRules - nft.meshRules;
  if (legacyOther > 0 && nftOther === 0 && legacy.usable) return pick('legacy', `only iptables-legacy holds rules (${legacyOther}) in this namespace`);
  if (nftOther > 0 && legacyOther === 0 && nft.usable) return pick('nft', `only iptables-nft holds rules (${nftOther}) in this namespace`);
  if (nftOther > 0 && legacyOther > 0) {
    const variant = nftOther >= legacyOther ? 'nft' : 'legacy';
    return pick(variant, `both backends hold rules; ${variant} holds more (${Math.max(nftOther, legacyOther)})`);
  }
  if (nft.usable) return pick('nft', 'no rules anywhere; the kernel supports nf_tables');
  return pick('legacy', `no rules anywhere and nf_tables is not usable (${nft.problem ?? 'iptables-nft-save failed'})`);
}
