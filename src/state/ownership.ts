/**
 * Which rules in a saved state belong to the mesh, whatever config or Istio
 * version wrote them: every rule in an ISTIO_* chain, every jump into one, and
 * the few non-jump rules Istio puts straight into built-in chains. Pure.
 */
import type { SavedRule, SaveState } from './iptables-save.js';
import { BUILTIN_CHAINS } from '../rules/model.js';
import { MESH_CHAIN_PREFIX } from '../rules/constants.js';

export const isMeshChain = (chain: string) => chain.startsWith(MESH_CHAIN_PREFIX);

/** The chain a rule spec jumps or goes to (`-j X` / `-g X`), if any. */
export function jumpTarget(spec: string): string | undefined {
  const match = / -[jg] (\S+)/.exec(` ${spec}`);
  return match?.[1];
}

/**
 * Non-jump rules Istio writes into built-in chains (exclude-interface RETURNs,
 * TPROXY mark handling, pre-1.25 DNS conntrack zones). A foreign rule of exactly
 * these shapes would be taken for ours: none of them is something another tool
 * has a reason to write (a RETURN in a built-in chain only acts as its policy).
 */
const BUILTIN_PATTERNS: Readonly<Record<string, readonly RegExp[]>> = {
  nat: [/^-[io] \S+ -j RETURN$/],
  mangle: [
    /^-[io] \S+ -j RETURN$/,
    /^-p tcp -m mark --mark 0x[0-9a-f]+ -j CONNMARK --save-mark( --nfmask 0xffffffff --ctmask 0xffffffff)?$/,
    /^-o lo -p tcp -m mark --mark 0x[0-9a-f]+ -j RETURN$/,
    /^! -d \S+ -o lo -p tcp -m owner --[ug]id-owner \S+ -j MARK --set-xmark 0x53a\/0xffffffff$/,
    /^-p tcp -m connmark --mark 0x[0-9a-f]+ -j CONNMARK --restore-mark( --nfmask 0xffffffff --ctmask 0xffffffff)?$/,
  ],
  raw: [/-p udp -m udp --[ds]port (53|15053)\b.* -j CT --zone [12]$/],
};

export function isMeshRule(table: string, rule: SavedRule): boolean {
  if (isMeshChain(rule.chain)) return true;
  const target = jumpTarget(rule.spec);
  if (target && isMeshChain(target)) return true;
  if (!BUILTIN_CHAINS.has(rule.chain)) return false;
  return (BUILTIN_PATTERNS[table] ?? []).some((pattern) => pattern.test(rule.spec));
}

/** Mesh `-A` rules in a state: the count detection uses, not header lines. */
export function countMeshRules(state: SaveState): number {
  let count = 0;
  for (const table of state.values()) for (const rule of table.rules) if (isMeshRule(table.name, rule)) count++;
  return count;
}

export function hasMeshState(state: SaveState): boolean {
  for (const table of state.values()) {
    if (table.chains.some(isMeshChain)) return true;
    if (table.rules.some((rule) => isMeshRule(table.name, rule))) return true;
  }
  return false;
}
