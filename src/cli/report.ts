/** Turns any thrown value into a message on stderr and an exit code. */
import { ConfigError, UsageError } from '../config/parse.js';
import { ExitCode, MeshcapError } from '../errors.js';
import type { CommandContext } from './context.js';

export function reportError(error: unknown, ctx: CommandContext, command: string): number {
  if (error instanceof ConfigError || error instanceof UsageError) {
    ctx.stderr(`meshcap ${command}: ${error.message}\n`);
    if (error instanceof UsageError) ctx.stderr(`Run 'meshcap ${command} --help' for usage.\n`);
    return ExitCode.InvalidConfig;
  }
  if (error instanceof MeshcapError) {
    ctx.stderr(`meshcap ${command}: ${error.describe()}`);
    return error.exitCode;
  }
  // A bug, not a user mistake: keep the stack, it is what a maintainer needs.
  const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
  ctx.stderr(`meshcap ${command}: unexpected internal error (please report it):\n${text}\n`);
  return ExitCode.Unexpected;
}
