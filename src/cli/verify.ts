/** `meshcap verify [istio-iptables flags]`: the live capture is what the config asks for, proven with real connections. */
import { readHostFacts } from '../backend/host.js';
import { realSystem } from '../backend/system.js';
import { parseCaptureConfig } from '../config/parse.js';
import type { CaptureConfig } from '../config/types.js';
import { type VerifyOptions, verifyCapture } from '../verify/run.js';
import { defineCommand } from './command.js';
import type { Command, CommandContext } from './context.js';
import { ExitCode } from '../errors.js';
import { EXIT_CODES_HELP } from './help.js';
import type { Logger } from './log.js';

const HELP = `Usage: meshcap verify [istio-iptables flags]

Checks, in the current network namespace, that the live rules equal the ones
the flags describe (canonically, on the backend that holds them), then proves
the capture with real connections that stay inside the pod: a non-proxy
user's connection to a captured address must land on the proxy's outbound port
(its original destination kept by conntrack), the proxy user's connection over
lo to 127.0.0.7 on the tunnel port must reach that address itself, and the
proxy user's connection over lo to 127.0.0.6 must land on the inbound port
(Istio's istio-validation path).
Connecting as other users needs CAP_SETUID and CAP_SETGID. Without them (as in
istio-init's securityContext) the outbound path is proven with this process's
own connection and the proxy user's probes are skipped, each with a warning
naming what it needs. Exit 0 when everything that ran holds, 6 naming the path
that failed.
'meshcap apply --run-validation' runs it right after applying.

${EXIT_CODES_HELP}
`;

export async function runVerify(config: CaptureConfig, ctx: CommandContext, log: Logger, options: VerifyOptions = {}): Promise<number> {
  const report = await verifyCapture(config, realSystem(ctx.env), log, options);
  for (const line of report.skipped) log.warn(`verify skipped: ${line}`);
  // Exit 0: nothing that was checked failed. The summary says how much that was.
  log.info(`verify: ${report.passed.length} check${report.passed.length === 1 ? '' : 's'} passed, ${report.skipped.length} skipped${report.skipped.length ? ' (see the warnings above)' : ''}`);
  return ExitCode.Ok;
}

export const verifyCommand: Command = defineCommand({
  name: 'verify',
  help: HELP,
  captureFlags: true,
  async run({ argv, ctx, logger }) {
    const config = parseCaptureConfig(argv, ctx.env, readHostFacts());
    return runVerify(config, ctx, logger({ json: config.logJson, debug: config.debug }));
  },
});
