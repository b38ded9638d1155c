/** Logs go to stderr (stdout carries only the command's result, e.g. a dry-run trace). */
import type { CommandContext } from './context.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export function createLogger(ctx: CommandContext, options: { json?: boolean; debug?: boolean } = {}): Logger {
  const write = (level: LogLevel, message: string) => {
    if (level === 'debug' && !options.debug) return;
    if (options.json) {
      ctx.stderr(`${JSON.stringify({ time: new Date().toISOString(), level, msg: message })}\n`);
    } else {
      ctx.stderr(`meshcap ${level}: ${message}\n`);
    }
  };
  return {
    debug: (message) => write('debug', message),
    info: (message) => write('info', message),
    warn: (message) => write('warn', message),
    error: (message) => write('error', message),
  };
}
