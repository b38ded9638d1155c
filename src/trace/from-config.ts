/** A config's Ruleset -> the simulator's tables for one family, in the order the kernel will hold them. Pure. */
import { renderSaveSpec } from '../render/iptables-save-form.js';
import { BUILTIN_CHAINS, type Family, type Ruleset, rulesForFamily } from '../rules/model.js';
import type { SimChain, SimRule, SimRuleset, SimTableName } from './model.js';

export function simRulesetFromConfig(ruleset: Ruleset, family: Family): SimRuleset {
  const tables = new Map<SimTableName, Map<string, SimRule[]>>();
  for (const rule of rulesForFamily(ruleset, family)) {
    const table = tables.get(rule.table) ?? tables.set(rule.table, new Map()).get(rule.table)!;
    const chain = table.get(rule.chain) ?? table.set(rule.chain, []).get(rule.chain)!;
    const sim: SimRule = {
      text: renderSaveSpec(rule, family),
      // The iptables spelling: nft-only matches are implied there by the port match.
      matches: rule.matches.filter((match) => match.only !== 'nft'),
      target: rule.target,
      why: rule.why,
    };
    // `-I CHAIN n` counts among the rules already written, as iptables-restore does.
    if (rule.insertAt === undefined) chain.push(sim);
    else chain.splice(Math.min(rule.insertAt - 1, chain.length), 0, sim);
    if (rule.target.kind === 'jump' && !table.has(rule.target.chain)) table.set(rule.target.chain, []);
  }
  const out = new Map<SimTableName, Map<string, SimChain>>();
  for (const [name, chains] of tables) {
    out.set(name, new Map([...chains].map(([chain, rules]) => [chain, BUILTIN_CHAINS.has(chain) ? { rules, policy: 'ACCEPT' as const } : { rules }])));
  }
  return { family, source: 'the configuration', tables: out };
}
