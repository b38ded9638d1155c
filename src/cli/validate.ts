/** `meshcap validate [istio-iptables flags]`: what `istio-iptables --run-validation --skip-rule-apply` runs (CNI mode's init container). */
import { readHostFacts } from '../backend/host.js';
import { VALIDATION_EXIT_CODE, ISTIO_VALIDATION_LINE, validateCapture } from '../cni/validate.js';
import { parseCaptureConfig } from '../config/parse.js';
import type { CaptureConfig } from '../config/types.js';
import { wantsHelp } from './command.js';
import type { Command, CommandContext } from './context.js';
import { ExitCode } from '../errors.js';
import { createLogger } from './log.js';
import type { Logger } from '../log.js';
import { reportError } from './report.js';

const HELP = `Usage: meshcap validate [istio-iptables flags]

The validation init container of CNI mode (Istio's istio-validation runs
'istio-iptables ... --run-validation --skip-rule-apply', which is the same).
Needs no capabilities and reads no rules. It proves the capture the node's
CNI plugin installed, with a connection whose both ends are in this pod:
  as the proxy uid: a connection over lo to 127.0.0.6:15002 must land on the
    inbound capture port (Istio's probe);
  as any other uid: a connection to a reserved address must land on the
    proxy's outbound port (the app's outbound path).
It retries every 0.5 s until --probe-timeout (PROBE_TIMEOUT, default 5s), so
a repair in place by the node agent lets the pod go on.
Exit 0 when proven; 126 otherwise, with Istio's first line:
  ${ISTIO_VALIDATION_LINE}
`;

export async function runValidationOnly(config: CaptureConfig, ctx: CommandContext, log: Logger): Promise<number> {
  const result = await validateCapture(config, log);
  if (result.ok) return ExitCode.Ok;
  ctx.stderr(`${[ISTIO_VALIDATION_LINE, ...result.lines].join('\n')}\n`);
  return VALIDATION_EXIT_CODE;
}

export const validateCommand: Command = async (argv, ctx) => {
  if (wantsHelp(argv)) {
    ctx.stdout(HELP);
    return ExitCode.Ok;
  }
  try {
    const config = parseCaptureConfig(argv, ctx.env, readHostFacts());
    return await runValidationOnly(config, ctx, createLogger(ctx, { json: config.logJson, debug: config.debug }));
  } catch (error) {
    return reportError(error, ctx, 'validate');
  }
};
