/**
 * Reads everything status and live trace look at in the current network
 * namespace, through System only, without changing anything (legacy tables
 * that do not exist are not created: see snapshotBackend).
 */
import { snapshotBackend } from '../backend/detect.js';
import { listNftRuleset } from '../backend/nft-read.js';
import type { System } from '../backend/system.js';
import type { Family } from '../rules/model.js';
import { parseFwmarkRules } from '../state/ip-rules.js';
import { type Variant, variantOfVersion } from '../state/iptables-variant.js';

export interface IptablesRead {
  readonly variant: Variant;
  /** Save output per family; absent when the family's binaries are missing or save failed. */
  readonly saves: Partial<Record<Family, string>>;
  readonly problem?: string;
}

export interface NamespaceRead {
  readonly legacy: IptablesRead;
  readonly nft: IptablesRead;
  /** `nft list ruleset inet`, or undefined when nft is missing or failed. */
  readonly nftables?: string;
  readonly nftablesProblem?: string;
  /** Which backend the plain `iptables` command is (what an operator's `iptables -S` shows). */
  readonly plainIptables?: Variant;
  /** `ip -4 rule show` / `ip -6 rule show`. */
  readonly ipRules: Partial<Record<Family, string>>;
  /** `ip route show table T` for each table an fwmark rule points at, per family. */
  readonly routeTables: Readonly<Record<string, Partial<Record<Family, string>>>>;
  /** `ip -6 -o addr show dev lo`. */
  readonly loAddresses?: string;
}

async function readIptables(sys: System, variant: Variant): Promise<IptablesRead> {
  const snapshot = await snapshotBackend(sys, variant);
  return { variant, saves: snapshot.saves, ...(snapshot.problem ? { problem: snapshot.problem } : {}) };
}

export async function readIptablesOnly(sys: System): Promise<Pick<NamespaceRead, 'legacy' | 'nft' | 'nftables' | 'nftablesProblem'>> {
  const [legacy, nft, nftables] = await Promise.all([readIptables(sys, 'legacy'), readIptables(sys, 'nft'), readNftables(sys)]);
  return { legacy, nft, ...nftables };
}

async function readNftables(sys: System): Promise<{ nftables?: string; nftablesProblem?: string }> {
  const nft = sys.which('nft');
  if (!nft) return { nftablesProblem: 'nft is not on PATH' };
  const result = await listNftRuleset(sys, nft);
  if (result.code !== 0) return { nftablesProblem: `nft list ruleset failed: ${result.stderr.trim() || `exit ${result.code}`}` };
  return { nftables: result.stdout };
}

export async function readNamespace(sys: System): Promise<NamespaceRead> {
  const tables = await readIptablesOnly(sys);
  const ipRules: Partial<Record<Family, string>> = {};
  const routeTables: Record<string, Partial<Record<Family, string>>> = {};
  let loAddresses: string | undefined;
  const ip = sys.which('ip');
  if (ip) {
    for (const family of ['ipv4', 'ipv6'] as const) {
      const flag = family === 'ipv4' ? '-4' : '-6';
      const rules = await sys.run(ip, [flag, 'rule', 'show']);
      if (rules.code !== 0) continue;
      ipRules[family] = rules.stdout;
      for (const rule of parseFwmarkRules(rules.stdout)) {
        const routes = await sys.run(ip, [flag, 'route', 'show', 'table', rule.table]);
        (routeTables[rule.table] ??= {})[family] = routes.code === 0 ? routes.stdout : '';
      }
    }
    const lo = await sys.run(ip, ['-6', '-o', 'addr', 'show', 'dev', 'lo']);
    if (lo.code === 0) loAddresses = lo.stdout;
  }
  let plainIptables: Variant | undefined;
  const plain = sys.which('iptables');
  if (plain) {
    const version = await sys.run(plain, ['--version']);
    if (version.code === 0) plainIptables = variantOfVersion(version);
  }
  return {
    ...tables,
    ipRules,
    routeTables,
    ...(loAddresses !== undefined ? { loAddresses } : {}),
    ...(plainIptables ? { plainIptables } : {}),
  };
}
