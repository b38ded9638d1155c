import type { Cause, Diagnosis } from './types.js';

/**
 * Renderings of a diagnosis: the `--json` document (a stable contract: exactly
 * id, title, confidence, evidence, explanation, fix per cause) and the text a
 * person reads in a terminal.
 */

export interface JsonCause {
  id: string;
  title: string;
  confidence: number;
  evidence: Array<{ line: number; text: string }>;
  explanation: string;
  fix: string[];
}

export interface JsonReading {
  text: string;
  evidence: { line: number; text: string };
}

export function toJson(diagnosis: Diagnosis): { causes: JsonCause[]; readings?: JsonReading[] } {
  const readings = diagnosis.readings.map((r) => ({ text: r.text, evidence: { line: r.evidence.line, text: r.evidence.text } }));
  return {
    ...(readings.length > 0 ? { readings } : {}),
    causes: diagnosis.causes.map((c) => ({
      id: c.id,
      title: c.title,
      confidence: c.confidence,
      evidence: c.evidence.map((e) => ({ line: e.line, text: e.text })),
      explanation: c.explanation,
      fix: [...c.fix],
    })),
  };
}

export function formatJson(diagnosis: Diagnosis): string {
  return `${JSON.stringify(toJson(diagnosis))}\n`;
}

export function formatHuman(diagnosis: Diagnosis): string {
  const out: string[] = [];
  const first = diagnosis.causes[0];
  if (first === undefined || first.id === 'unknown') {
    out.push(`meshcap doctor: no known cause found in ${diagnosis.lines} line(s) of input.`);
  } else {
    const n = diagnosis.causes.length;
    out.push(`meshcap doctor: ${n} likely cause${n === 1 ? '' : 's'} in ${diagnosis.lines} line(s), best first.`);
  }
  diagnosis.causes.forEach((cause, index) => {
    out.push('');
    out.push(...formatCause(cause, index + 1, first?.id === 'unknown' && index > 0));
  });
  if (diagnosis.readings.length > 0) {
    out.push('');
    out.push('The capture configuration in the input, read with meshcap\'s parser:');
    for (const r of diagnosis.readings) out.push(`  L${r.evidence.line}: ${r.text}`);
  }
  return `${out.join('\n')}\n`;
}

function formatCause(cause: Cause, rank: number, hint: boolean): string[] {
  const lines: string[] = [];
  const label = hint ? ' (weak hint)' : '';
  lines.push(`${rank}. ${cause.id}${label}: ${cause.title}`);
  lines.push(`   confidence: ${cause.confidence.toFixed(2)}`);
  if (cause.evidence.length > 0) {
    lines.push('   evidence:');
    for (const e of cause.evidence) lines.push(`  L${e.line}: ${e.text}`);
  }
  lines.push(`   why: ${cause.explanation}`);
  lines.push('   fix:');
  cause.fix.forEach((step, i) => lines.push(`     ${i + 1}. ${step}`));
  if (cause.references.length > 0) {
    lines.push('   see:');
    for (const ref of cause.references) lines.push(`     ${ref}`);
  }
  return lines;
}
