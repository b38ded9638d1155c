/** Logs go to stderr (stdout carries only the command's result, e.g. a dry-run trace). */
import { type LogOptions, type Logger, lineLogger } from '../log.js';
import type { CommandContext } from './context.js';

export type { Logger, LogLevel } from '../log.js';

export function createLogger(ctx: CommandContext, options: LogOptions = {}): Logger {
  return lineLogger(ctx.stderr, options);
}
