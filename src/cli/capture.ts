/** `meshcap istio-iptables` / `meshcap apply`: argument wiring for the capture engine. */
import { writeFileSync } from 'node:fs';
import { readHostFacts } from '../backend/host.js';
import { type CaptureIntent, captureIntent, parseResolvedConfig, type ResolvedFlags, resolveCaptureFlags } from '../config/parse.js';
import type { CaptureConfig } from '../config/types.js';
import { ExitCode, InvalidInputError, MeshcapError } from '../errors.js';
import { readNamespaceFacts } from '../backend/namespaces.js';
import { type System, realSystem } from '../backend/system.js';
import { hostNetnsEvidence } from '../preflight/host-netns.js';
import { logPlan, renderDryRun } from '../reconcile/dry-run.js';
import { dryRunState, type EngineOptions, planCapture, runCapture, startEarlyWriter, startFirstRead } from '../reconcile/engine.js';
import { type CommandRun, defineCommand } from './command.js';
import type { Command, CommandContext } from './context.js';
import { captureHelp } from './help.js';
import type { Logger } from './log.js';
import { familyLabel } from '../rules/model.js';

/**
 * `system`: the machine, unless given another (the single executable's build trains this very
 * path against one that touches nothing, src/cli/sea-capture.ts).
 */
export function captureCommand(name: string, system: (env: CommandContext['env']) => System = realCaptureSystem): Command {
  return defineCommand({
    name,
    help: () => captureHelp(name),
    captureFlags: true,
    async run({ argv, ctx, logger }) {
      const sys = system(ctx.env);
      const flags = resolveCaptureFlags(argv, ctx.env);
      const intent = captureIntent(flags);
      refuseHostNamespace(intent, sys);
      // The first read runs in the background while the values are validated and the decisions
      // logged (README, "Start-up"): it changes nothing, whatever they turn out to be. A long
      // capture's writer starts now too; it is given nothing before a plan exists.
      const firstRead = intent.touchesRules ? startFirstRead(sys, intent.nativeNftables) : undefined;
      const writer = intent.touchesRules && intent.longLists && !intent.cleanupOnly ? startEarlyWriter(sys, intent.nativeNftables) : undefined;
      try {
        return await capture(flags, sys, ctx, logger, { ...(firstRead ? { firstRead } : {}), ...(writer ? { writer } : {}) });
      } finally {
        writer?.release();
      }
    },
  });
}

/** The capture once its reads and writer are started: validate, log, then apply (or dry-run, or validate only). */
async function capture(
  flags: ResolvedFlags,
  sys: System,
  ctx: CommandContext,
  logger: CommandRun['logger'],
  started: Pick<EngineOptions, 'firstRead' | 'writer'>,
): Promise<number> {
  const config = parseResolvedConfig(flags, ctx.env, readHostFacts(sys));
  const log = logger({ json: config.logJson, debug: config.debug });
  // Istio's istio-validation (CNI mode): unprivileged, proves the node's capture, exits 126 with Istio's line first.
  if (config.skipRuleApply && config.runValidation && !config.dryRun) return await (await import('./validate.js')).runValidationOnly(config, ctx, log);
  logDecisions(config, log);
  if (config.dryRun) return await dryRun(config, ctx, log);
  if (config.skipRuleApply) {
    log.info('--skip-rule-apply: rules and routes left as they are');
    return ExitCode.Ok;
  }
  const report = await runCapture(config, { sys, log, ...started });
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
}

/** Blocking children: the init path runs them one after another anyway (README, "Start-up"). */
function realCaptureSystem(env: CommandContext['env']): System {
  return realSystem(env, { blocking: true });
}

/**
 * Refuses, in one line (exit 2), to write a capture where it is evidently the
 * machine's own network namespace, before anything is run. Only a capture is
 * refused: a dry run, --skip-rule-apply and --cleanup-only (which undoes a
 * capture typed in the wrong place) change nothing or remove it.
 */
function refuseHostNamespace(intent: CaptureIntent, sys: System): void {
  if (intent.allowHostNetns || !intent.touchesRules || intent.cleanupOnly) return;
  const evidence = hostNetnsEvidence(readNamespaceFacts(sys));
  if (!evidence) return;
  const what = "refusing to capture in this machine's own network namespace";
  const why = `${evidence}: a capture here redirects the machine's own outbound TCP to port ${intent.proxyPort}`;
  const fix = "run it in the pod's namespace (ip netns exec NAME ..., nsenter --net=PATH ...), or pass --allow-host-netns (MESHCAP_ALLOW_HOST_NETNS=true) where that is the intent, as for istio-iptables on a VM; nothing was changed";
  throw new InvalidInputError({ what, why, fix }, `${what} (${why}); ${fix}`);
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

/** As Istio's --dry-run: the plan against a clean state, printed; nothing is read or changed. */
async function dryRun(config: CaptureConfig, ctx: CommandContext, log: Logger): Promise<number> {
  const plan = planCapture(config, dryRunState());
  logPlan(plan, log);
  const text = renderDryRun(plan);
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
