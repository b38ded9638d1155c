/** Entry point: dispatch to a command. bin/meshcap calls `main` with the real process. */
import { captureCommand } from './capture.js';
import type { Command, CommandContext } from './context.js';
import { ExitCode } from '../errors.js';
import { MAIN_HELP } from './help.js';
import { meshcapVersion } from '../version.js';

const COMMANDS: Record<string, () => Promise<Command>> = {
  'istio-iptables': async () => captureCommand('istio-iptables'),
  apply: async () => captureCommand('apply'),
  doctor: async () => (await import('./doctor.js')).doctorCommand,
  demo: async () => (await import('./demo.js')).demoCommand,
  clean: async () => (await import('./clean.js')).cleanCommand,
  verify: async () => (await import('./verify.js')).verifyCommand,
  trace: async () => (await import('./trace.js')).traceCommand,
  explain: async () => (await import('./explain.js')).explainCommand,
  status: async () => (await import('./status.js')).statusCommand,
  audit: async () => (await import('./audit.js')).auditCommand,
  inject: async () => (await import('./inject.js')).injectCommand,
  webhook: async () => (await import('./webhook.js')).webhookCommand,
  validate: async () => (await import('./validate.js')).validateCommand,
  cni: async () => (await import('./cni.js')).cniCommand,
  'probe-server': async () => (await import('./probe.js')).probeServerCommand,
  'probe-connect': async () => (await import('./probe.js')).probeConnectCommand,
};

export async function main(argv: readonly string[], ctx: CommandContext): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    // No command is a usage error: the help goes to stderr so a pipe sees nothing.
    ctx.stderr(MAIN_HELP);
    return ExitCode.InvalidConfig;
  }
  if (name === 'help' || name === '--help' || name === '-h') {
    ctx.stdout(MAIN_HELP);
    return ExitCode.Ok;
  }
  if (name === 'version' || name === '--version') {
    ctx.stdout(`meshcap ${meshcapVersion()}\n`);
    return ExitCode.Ok;
  }
  const load = COMMANDS[name];
  if (!load) {
    ctx.stderr(`meshcap: unknown command ${JSON.stringify(name)}. Run 'meshcap --help' for the list.\n`);
    return ExitCode.InvalidConfig;
  }
  return (await load())(rest, ctx);
}

/** The real process as a CommandContext (its own file: the single executable's capture entry needs it without the command table). */
export { processContext } from './process-context.js';
