/** Status report -> text. Pure. */
import type { StatusReport } from './analyze.js';
import { derivedArgs, shellQuote } from './derive.js';
import { familyLabel } from '../rules/model.js';

export function renderStatusText(report: StatusReport, namespace: string): string {
  const lines = [`meshcap status (${namespace}): ${report.health.toUpperCase()}: ${report.summary}`, ''];
  lines.push('backend           mesh rules (IPv4/IPv6)   other rules   state');
  for (const b of report.backends) {
    const mesh = b.name === 'nftables' ? String(b.meshRules.ipv4 ?? 0) : `${b.meshRules.ipv4 ?? '-'} / ${b.meshRules.ipv6 ?? '-'}`;
    const foreign = b.name === 'nftables' ? String(b.foreignRules.ipv4 ?? 0) : `${b.foreignRules.ipv4 ?? '-'} / ${b.foreignRules.ipv6 ?? '-'}`;
    const state = !b.readable ? 'unreadable' : !b.present ? 'no mesh rules' : b.problems.length ? 'INCOMPLETE' : 'complete';
    lines.push(`${b.name.padEnd(18)}${mesh.padEnd(25)}${foreign.padEnd(14)}${state}`);
  }
  for (const b of report.backends.filter((x) => x.present)) {
    for (const problem of b.problems) lines.push(`  ${b.name}: ${problem}`);
  }
  for (const b of report.backends.filter((x) => x.derived)) {
    const env = Object.entries(b.derived!.env).map(([k, v]) => `${k}=${shellQuote([v])} `).join('');
    lines.push('', `configuration in ${b.name} (derived from its rules${b.derived!.complete ? '' : '; "unknown" where the rules do not say'}):`);
    lines.push(`  ${env}meshcap apply ${shellQuote(derivedArgs(b.derived!))}${b.name === 'nftables' ? ' --native-nftables' : ''}`);
  }
  lines.push('');
  if (report.tproxyRouting.length === 0) lines.push('TPROXY routing: none (ip rule has no fwmark rule)');
  for (const r of report.tproxyRouting) {
    lines.push(`TPROXY routing (${familyLabel(r.family)}): ip rule ${r.spec}; table ${r.table} ${r.localRoute ? "has 'local default dev lo'" : "LACKS 'local default dev lo'"}`);
  }
  if (report.passthroughV6OnLo !== undefined) lines.push(`::6/128 on lo: ${report.passthroughV6OnLo ? 'present' : 'absent'}`);
  if (report.drift) {
    lines.push('', report.drift.length === 0 ? 'drift from the given configuration: none' : 'drift from the given configuration:');
    for (const d of report.drift) lines.push(`  ${d}`);
  }
  if (report.warnings.length) lines.push('');
  for (const w of report.warnings) lines.push(`warning: ${w}`);
  for (const n of report.notes) lines.push(`note: ${n}`);
  return `${lines.join('\n')}\n`;
}
