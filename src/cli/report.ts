/**
 * Turns any thrown value into an exit code and one report through the
 * command's logger: text on stderr, or one JSON line under --log_as_json.
 */
import { ExitCode, isMeshcapError, UsageError } from '../errors.js';
import type { Logger } from '../log.js';
import type { CommandContext } from './context.js';
import { createLogger } from './log.js';

export function reportError(error: unknown, ctx: CommandContext, command: string, log: Logger = createLogger(ctx)): number {
  if (isMeshcapError(error)) {
    const help = error instanceof UsageError ? `Run 'meshcap ${command} --help' for usage.\n` : '';
    log.fatal(`meshcap ${command}: ${error.describe()}${help}`, { msg: error.message, command, ...error.toJSON() });
    return error.exitCode;
  }
  // A bug, not a user mistake: keep the stack, it is what a maintainer needs.
  const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
  log.fatal(`meshcap ${command}: unexpected internal error (please report it):\n${text}\n`, {
    msg: 'unexpected internal error (please report it)',
    command,
    exitCode: ExitCode.Unexpected,
    stack: text,
  });
  return ExitCode.Unexpected;
}
