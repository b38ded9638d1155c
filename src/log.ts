/**
 * The logger every layer writes through. The CLI creates it (src/cli/log.ts
 * binds it to stderr); the engine, preflight and verify only receive it.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  /**
   * The error that ends a command: `text` as is (it is already formatted for a
   * person), or under JSON one line carrying `fields` (what, why, fix, ...).
   */
  fatal(text: string, fields: Readonly<Record<string, unknown>>): void;
}

export interface LogOptions {
  /** One JSON object per line (`--log_as_json`). */
  readonly json?: boolean;
  readonly debug?: boolean;
}

/** A logger writing lines to `write`: `meshcap LEVEL: message`, or JSON lines. */
export function lineLogger(write: (line: string) => void, options: LogOptions = {}): Logger {
  const emit = (level: LogLevel, message: string) => {
    if (level === 'debug' && !options.debug) return;
    if (options.json) write(`${JSON.stringify({ time: new Date().toISOString(), level, msg: message })}\n`);
    else write(`meshcap ${level}: ${message}\n`);
  };
  return {
    debug: (message) => emit('debug', message),
    info: (message) => emit('info', message),
    warn: (message) => emit('warn', message),
    error: (message) => emit('error', message),
    fatal(text, fields) {
      if (!options.json) return write(text);
      write(`${JSON.stringify({ time: new Date().toISOString(), level: 'error', ...fields })}\n`);
    },
  };
}

/** Drops everything: for library callers that do not want logs. */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {}, fatal() {} };
