/** `meshcap istio-iptables` / `meshcap apply`: argument wiring for the capture engine. */
import { writeFileSync } from 'node:fs';
import { readHostFacts } from '../backend/host.js';
import { parseCaptureConfig } from '../config/parse.js';
import type { CaptureConfig } from '../config/types.js';
import { MeshcapError } from '../errors.js';
import { renderIstioDryRunTrace } from '../render/iptables.js';
import { renderNftCleanup, renderNftTransaction } from '../render/nftables.js';
import { buildRuleset } from '../rules/build.js';
import type { Command, CommandContext } from './context.js';
import { ExitCode } from './exit-codes.js';
import { captureHelp } from './help.js';
import { createLogger, type Logger } from './log.js';
import { reportError } from './report.js';

export function wantsHelp(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  const flags = end === -1 ? argv : argv.slice(0, end);
  return flags.includes('--help') || flags.includes('-h');
}

export function captureCommand(name: string): Command {
  return async (argv, ctx) => {
    if (wantsHelp(argv)) {
      ctx.stdout(captureHelp(name));
      return ExitCode.Ok;
    }
    try {
      const config = parseCaptureConfig(argv, ctx.env, readHostFacts());
      const log = createLogger(ctx, { json: config.logJson, debug: config.debug });
      logDecisions(config, log);
      if (config.dryRun) return dryRun(config, ctx);
      throw new MeshcapError(
        ExitCode.Unsupported,
        `${name} without --dry-run`,
        'applying rules to the kernel is not available in this build',
        `run 'meshcap ${name} --dry-run ...' to see the rules`,
      );
    } catch (error) {
      return reportError(error, ctx, name);
    }
  };
}

function logDecisions(config: CaptureConfig, log: Logger): void {
  log.info(`IPv6 rules ${config.ipv6.enabled ? 'on' : 'off'}: ${config.ipv6.reason}`);
  if (config.dns.requested && !config.dns.effective) {
    log.warn('DNS capture was asked for, but there are no DNS servers and --capture-all-dns is off: DNS capture disabled');
  }
  if (!config.ipv6.enabled && (config.outboundCidrs.v6.length > 0 || config.outboundCidrsExclude.v6.length > 0)) {
    log.warn('IPv6 CIDRs were given but IPv6 rules are off: they have no effect (use --ipv6=true or --dual-stack)');
  }
}

function dryRun(config: CaptureConfig, ctx: CommandContext): number {
  const ruleset = buildRuleset(config);
  const text = config.nativeNftables
    ? `${(config.cleanupOnly ? renderNftCleanup() : renderNftTransaction(ruleset)).join('\n')}\n`
    : renderIstioDryRunTrace(ruleset);
  ctx.stdout(text);
  if (config.dryRunFilePath) {
    try {
      writeFileSync(config.dryRunFilePath, text);
    } catch (error) {
      throw new MeshcapError(
        ExitCode.InvalidConfig,
        `writing the dry-run trace to ${config.dryRunFilePath} (DRY_RUN_FILE_PATH)`,
        (error as Error).message,
        'point DRY_RUN_FILE_PATH at a writable file, or unset it',
      );
    }
  }
  return ExitCode.Ok;
}
