/**
 * Recorded commands -> the dry-run trace in Istio's format: a command without
 * stdin as "<binary> <args>", a restore as its input lines (the restore command
 * line itself is not shown). For nft, only the transaction text. Pure.
 */
import type { RecordedCall } from '../backend/system.js';

const base = (file: string) => file.split('/').pop() ?? file;

export function renderIptablesTrace(calls: readonly RecordedCall[]): string {
  const lines: string[] = [];
  for (const call of calls) {
    if (call.input !== undefined) lines.push(...call.input.split('\n').filter((line) => line !== ''));
    else lines.push([base(call.file), ...call.args].join(' '));
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}

export function renderNftTrace(calls: readonly RecordedCall[]): string {
  return calls.filter((call) => call.input !== undefined).map((call) => call.input).join('');
}
