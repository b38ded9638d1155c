/** node:util parseArgs for meshcap's own commands, with its errors turned into one-line usage errors. */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { UsageError } from '../config/parse.js';

/** parseArgs messages run to several sentences; the first one names the problem. */
export function firstSentence(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const first = message.split(/\. |\n/)[0] ?? message;
  return first.replace(/\.$/, '');
}

/** Strict options, no positionals; a bad command line is a UsageError (exit 2). */
export function parseCommandArgs<const O extends NonNullable<ParseArgsConfig['options']>>(argv: readonly string[], options: O) {
  try {
    return parseArgs({ args: [...argv], options, allowPositionals: false, strict: true }).values;
  } catch (error) {
    throw new UsageError(firstSentence(error));
  }
}
