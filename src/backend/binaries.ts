/**
 * The iptables binaries of each backend and family, resolved through PATH as
 * Istio resolves them (so a test or an image can put a stand-in first).
 */
import type { Family } from '../rules/model.js';
import { type Variant, variantOfVersion } from '../state/iptables-variant.js';
import type { System } from './system.js';

export interface IptablesBinaries {
  readonly variant: Variant;
  readonly family: Family;
  readonly save: string;
  readonly restore: string;
  /** Only iptables-legacy serialises writers through /run/xtables.lock. */
  readonly usesXtablesLock: boolean;
}

export const familyBase = (family: Family) => (family === 'ipv4' ? 'iptables' : 'ip6tables');

/** The Debian package that ships a binary, for "how to fix" messages. */
export const PACKAGE_OF: Readonly<Record<string, string>> = {
  iptables: 'iptables',
  ip6tables: 'iptables',
  nft: 'nftables',
  ip: 'iproute2',
};

/**
 * `iptables-<variant>-save` and `-restore`, or the plain `iptables-save` when
 * the image only has one variant and its version string says it is that one.
 */
export async function resolveBinaries(sys: System, variant: Variant, family: Family): Promise<IptablesBinaries | undefined> {
  const base = familyBase(family);
  const save = sys.which(`${base}-${variant}-save`);
  const restore = sys.which(`${base}-${variant}-restore`);
  if (save && restore) return { variant, family, save, restore, usesXtablesLock: variant === 'legacy' };
  const plainSave = sys.which(`${base}-save`);
  const plainRestore = sys.which(`${base}-restore`);
  if (!plainSave || !plainRestore) return undefined;
  const version = await sys.run(plainSave, ['--version']);
  const plainVariant = variantOfVersion(version);
  if (version.code !== 0 || plainVariant !== variant) return undefined;
  return { variant, family, save: plainSave, restore: plainRestore, usesXtablesLock: variant === 'legacy' };
}

/** The names Istio's dry-run stub reports: plain binaries, no lock. */
export function plainBinaries(family: Family): IptablesBinaries {
  const base = familyBase(family);
  return { variant: 'nft', family, save: `${base}-save`, restore: `${base}-restore`, usesXtablesLock: false };
}
