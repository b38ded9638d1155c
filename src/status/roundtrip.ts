/**
 * Checks derived flags by building their rules and comparing them with the
 * live ones: equal means the derivation is exact. Pure (fixed host facts:
 * derived flags name everything host facts would otherwise supply).
 */
import { parseCaptureConfig } from '../config/parse.js';
import { NO_HOST_FACTS } from '../config/types.js';
import { buildRuleset } from '../rules/build.js';
import { liveDifferences } from '../state/compare.js';
import { type DerivedConfig, derivedArgs } from './derive.js';
import type { NamespaceRead } from './gather.js';
import { type SourceName, liveRulesOf } from './sources.js';

export function roundTrip(read: NamespaceRead, derived: DerivedConfig, source: SourceName): string[] | undefined {
  let ruleset;
  try {
    const args = [...derivedArgs(derived), ...(source === 'nftables' ? ['--native-nftables'] : [])];
    ruleset = buildRuleset(parseCaptureConfig(args, derived.env, NO_HOST_FACTS));
  } catch {
    return undefined;
  }
  return liveDifferences(ruleset, liveRulesOf(read, source), { unreadable: 'empty' });
}
