/** `meshcap istio-iptables` / `meshcap apply`: argument wiring for the capture engine. */
import { writeFileSync } from 'node:fs';
import { readHostFacts } from '../backend/host.js';
import { parseCaptureConfig } from '../config/parse.js';
import type { CaptureConfig } from '../config/types.js';
import { ExitCode, MeshcapError } from '../errors.js';
import { realSystem, recordingSystem } from '../backend/system.js';
import { runCapture } from '../reconcile/engine.js';
import { renderIptablesTrace, renderNftTrace } from '../render/trace.js';
import { defineCommand } from './command.js';
import type { Command, CommandContext } from './context.js';
import { captureHelp } from './help.js';
import type { Logger } from './log.js';
import { familyLabel } from '../rules/model.js';

export function captureCommand(name: string): Command {
  return defineCommand({
    name,
    help: captureHelp(name),
    captureFlags: true,
    async run({ argv, ctx, logger }) {
      const config = parseCaptureConfig(argv, ctx.env, readHostFacts());
      const log = logger({ json: config.logJson, debug: config.debug });
      logDecisions(config, log);
      if (config.dryRun) return await dryRun(config, ctx, log);
      if (config.skipRuleApply) {
        log.info('--skip-rule-apply: rules and routes left as they are');
        return config.runValidation ? await (await import('./verify.js')).runVerify(config, ctx, log) : ExitCode.Ok;
      }
      const report = await runCapture(config, ctx.env, { sys: realSystem(ctx.env, { blocking: true }), log });
      for (const family of report.families) {
        if (family.family === 'ipv6' && !config.ipv6.enabled && !family.changed) continue;
        log.info(`${familyLabel(family.family)}: ${family.changed ? `applied and verified${family.attempts > 1 ? ` (after ${family.attempts} attempts)` : ''}` : 'already in place, nothing to do'}`);
      }
      for (const note of report.notes) log.info(note);
      if (config.cleanupOnly) log.info(report.changed ? `capture removed (${report.backend})` : 'no capture found: nothing to do');
      else log.info(report.changed ? `capture in place (${report.backend})` : `already in place, nothing to do (${report.backend})`);
      // Loaded only when asked for: it pulls in the probe server and client.
      if (config.runValidation && !config.cleanupOnly) {
        // The engine has just read the rules back: do not detect and read them a second time.
        return await (await import('./verify.js')).runVerify(config, ctx, log, { rulesJustVerified: true });
      }
      return ExitCode.Ok;
    },
  });
}

function logDecisions(config: CaptureConfig, log: Logger): void {
  log.info(`IPv6 rules ${config.ipv6.enabled ? 'on' : 'off'}: ${config.ipv6.reason}`);
  if (config.dns.requested && !config.dns.effective) {
    log.warn('DNS capture was asked for, but there are no DNS servers and --capture-all-dns is off: DNS capture disabled');
  }
  if (!config.ipv6.enabled && (config.outboundCidrs.v6.length > 0 || config.outboundCidrsExclude.v6.length > 0)) {
    log.warn('IPv6 CIDRs were given but IPv6 rules are off: they have no effect (use --ipv6=true or --dual-stack)');
  }
  if (config.cidrSets && !config.nativeNftables) {
    log.warn('--cidr-sets applies to native nftables (--native-nftables) only: the iptables rules keep one rule per excluded CIDR and port');
  }
}

/** The engine against a recording stub, as Istio's --dry-run: the state reads as clean, nothing changes. */
async function dryRun(config: CaptureConfig, ctx: CommandContext, log: Logger): Promise<number> {
  const sys = recordingSystem(realSystem(ctx.env));
  await runCapture(config, ctx.env, { sys, log });
  const text = config.nativeNftables ? renderNftTrace(sys.calls) : renderIptablesTrace(sys.calls);
  ctx.stdout(text);
  if (config.dryRunFilePath) {
    try {
      writeFileSync(config.dryRunFilePath, text);
    } catch (error) {
      throw new MeshcapError({
        exitCode: ExitCode.InvalidConfig,
        what: `writing the dry-run trace to ${config.dryRunFilePath} (DRY_RUN_FILE_PATH)`,
        why: (error as Error).message,
        fix: 'point DRY_RUN_FILE_PATH at a writable file, or unset it',
        cause: error,
      });
    }
  }
  return ExitCode.Ok;
}
