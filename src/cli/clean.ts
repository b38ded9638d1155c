/** `meshcap clean`: remove the capture of any config and version, from every backend. */
import { readHostFacts } from '../backend/host.js';
import { realSystem } from '../backend/system.js';
import { parseCaptureConfig } from '../config/parse.js';
import { cleanEverything } from '../reconcile/engine.js';
import { defineCommand } from './command.js';
import type { Command } from './context.js';
import { EXIT_CODES_HELP } from './help.js';
import { ExitCode } from '../errors.js';

const HELP = `Usage: meshcap clean [--lock-timeout SECONDS] [--log_as_json]

Remove every mesh chain and rule (ISTIO_*), whatever config or Istio version
wrote them, from iptables-legacy and iptables-nft (IPv4 and IPv6), the native
nftables tables (inet istio-proxy-*), and the TPROXY policy routes. Other rules
are left byte for byte. Running it again when nothing is left exits 0.
Accepts the istio-iptables flags too, so an istio-init command line works.

${EXIT_CODES_HELP}
`;

export const cleanCommand: Command = defineCommand({
  name: 'clean',
  help: HELP,
  captureFlags: true,
  async run({ argv, ctx, logger }) {
    const config = parseCaptureConfig(argv, ctx.env, readHostFacts());
    const log = logger({ json: config.logJson, debug: config.debug });
    const removed = await cleanEverything({ sys: realSystem(ctx.env), log, lockTimeoutSeconds: config.lockTimeoutSeconds });
    if (removed.length === 0) log.info('no mesh capture found: nothing to do');
    for (const item of removed) log.info(`removed ${item}`);
    return ExitCode.Ok;
  },
});
