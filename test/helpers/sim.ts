/** Test helper: the iptables-save text a simulated ruleset stands for. */
import type { SimRuleset } from '../../src/trace/model.js';

export function saveTextOf(rs: SimRuleset): string {
  const lines: string[] = [];
  for (const [table, chains] of rs.tables) {
    lines.push(`*${table}`);
    for (const [name, chain] of chains) lines.push(`:${name} ${chain.policy ?? '-'} [0:0]`);
    for (const [name, chain] of chains) for (const rule of chain.rules) lines.push(`-A ${name} ${rule.text}`);
    lines.push('COMMIT');
  }
  return `${lines.join('\n')}\n`;
}
