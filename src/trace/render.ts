/** A trace result as text for people and as JSON for tools. Pure. */
import { formatIp } from '../net/ip.js';
import type { Packet } from './model.js';
import type { TraceResult } from './simulate.js';
import { familyLabel } from '../rules/model.js';

export function describePacket(packet: Packet): string {
  const host = (address: string, port: number) => (address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`);
  const parts = [
    `${packet.direction} ${packet.proto} ${host(formatIp(packet.src), packet.sport)} -> ${host(formatIp(packet.dst), packet.dport)}`,
  ];
  if (packet.uid !== undefined) parts.push(`uid ${packet.uid} gid ${packet.gid ?? packet.uid}`);
  if (packet.inIface) parts.push(`in ${packet.inIface}`);
  if (packet.outIface) parts.push(`out ${packet.outIface}`);
  parts.push(`${familyLabel(packet.family)}, ${packet.state === 'new' ? 'new connection' : 'established connection'}`);
  if (packet.mark) parts.push(`mark 0x${packet.mark.toString(16)}`);
  return parts.join(', ');
}

export function renderTraceText(packet: Packet, result: TraceResult): string {
  const lines = [`trace: ${describePacket(packet)}`, `rules: ${result.source}`];
  for (const step of result.steps) {
    const indent = (depth: number) => '  '.repeat(depth + 1);
    switch (step.kind) {
      case 'hook':
        lines.push('', `${step.hook} hook: ${step.note}`);
        break;
      case 'chain':
        lines.push(`${indent(step.depth)}${step.table} ${step.chain}${step.note ? `: ${step.note}` : ''}`);
        break;
      case 'rule':
        lines.push(
          step.matched
            ? `${indent(step.depth)}  ${String(step.index).padStart(2)} match  ${step.text}  => ${step.reason}${step.why ? `  (${step.why})` : ''}`
            : `${indent(step.depth)}  ${String(step.index).padStart(2)} no     ${step.text}  (${step.reason})`,
        );
        break;
      case 'note':
        lines.push(`${indent(step.depth)}  ${step.text}`);
        break;
    }
  }
  lines.push('', `verdict: ${result.verdict.summary}`);
  const final = result.final;
  if (final.mark || final.ctmark || final.zone !== undefined) {
    lines.push(`state: mark 0x${final.mark.toString(16)}, connection mark 0x${final.ctmark.toString(16)}${final.zone !== undefined ? `, conntrack zone ${final.zone}` : ''}`);
  }
  for (const warning of result.warnings) lines.push(`warning: ${warning}`);
  return `${lines.join('\n')}\n`;
}

export function traceJson(packet: Packet, result: TraceResult): unknown {
  return {
    packet: {
      direction: packet.direction,
      family: packet.family,
      proto: packet.proto,
      src: formatIp(packet.src),
      dst: formatIp(packet.dst),
      sport: packet.sport,
      dport: packet.dport,
      ...(packet.uid !== undefined ? { uid: packet.uid, gid: packet.gid } : {}),
      ...(packet.inIface ? { in: packet.inIface } : {}),
      ...(packet.outIface ? { out: packet.outIface } : {}),
      state: packet.state,
      mark: packet.mark,
    },
    source: result.source,
    verdict: result.verdict,
    final: result.final,
    steps: result.steps,
    warnings: result.warnings,
  };
}
