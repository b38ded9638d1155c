/**
 * The skeleton every command shares: `--help`, running, and turning a thrown
 * error into one report through the command's logger and an exit code. Also
 * the helpers command files share (so no command file is another's utility module).
 */
import { parseGoBool } from '../config/argv.js';
import { ExitCode } from '../errors.js';
import type { LogOptions, Logger } from '../log.js';
import type { Command, CommandContext } from './context.js';
import { createLogger } from './log.js';
import { reportError } from './report.js';

/** `--help` or `-h` before a `--` terminator. */
export function wantsHelp(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  const flags = end === -1 ? argv : argv.slice(0, end);
  return flags.includes('--help') || flags.includes('-h');
}

/**
 * `--log_as_json` on a command line the configuration parser may yet refuse:
 * so that even that refusal comes out as one JSON line.
 */
export function asksForJsonLogs(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  const flags = end === -1 ? argv : argv.slice(0, end);
  let json = false;
  for (const arg of flags) {
    if (arg === '--log_as_json') json = true;
    else if (arg.startsWith('--log_as_json=')) json = parseGoBool(arg.slice('--log_as_json='.length)) ?? json;
  }
  return json;
}

export interface CommandRun {
  readonly argv: readonly string[];
  readonly ctx: CommandContext;
  /** The command's logger; errors thrown afterwards are reported through it. */
  logger(options: LogOptions): Logger;
}

export interface CommandSpec {
  /** As the user typed it: `apply`, `istio-iptables`, `status`... */
  readonly name: string;
  /** The text, or a function making it (a long text is then built only when asked for). */
  readonly help: string | (() => string);
  /** Takes the istio-iptables flags (and so --log_as_json). */
  readonly captureFlags?: boolean;
  run(command: CommandRun): Promise<number>;
}

export function defineCommand(spec: CommandSpec): Command {
  return async (argv, ctx) => {
    if (wantsHelp(argv)) {
      ctx.stdout(typeof spec.help === 'function' ? spec.help() : spec.help);
      return ExitCode.Ok;
    }
    let log = createLogger(ctx, { json: spec.captureFlags === true && asksForJsonLogs(argv) });
    try {
      return await spec.run({ argv, ctx, logger: (options) => (log = createLogger(ctx, options)) });
    } catch (error) {
      return reportError(error, ctx, spec.name, log);
    }
  };
}
