/**
 * `meshcap cni install | uninstall | agent`: put meshcap-cni on a node, take
 * it off, or keep it there (the DaemonSet). `meshcap cni plugin` is the
 * plugin itself run from a checkout (the node gets the single executable).
 */
import { existsSync } from 'node:fs';
import { AuditLoop, DEFAULT_AUDIT_INTERVAL_S } from '../audit/loop.js';
import { realSystem } from '../backend/system.js';
import { Agent, type AgentExtension } from '../cni/agent.js';
import { CriClient } from '../cri/client.js';
import { ConfigFileError } from '../cni/conflist.js';
import { cniEntry } from '../cni/entry.js';
import { commitConfig, CONFIG_MODES, type ConfigMode, InstallError, installBinary, planConfig, uninstall } from '../cni/install.js';
import type { Command, CommandContext } from './context.js';
import { ExitCode } from '../errors.js';
import { badFlag, takeOwnFlags } from './own-flags.js';
import { singleExecutablePath } from './self.js';
import { ConfigError } from '../config/parse.js';

const HELP = `Usage:
  meshcap cni install   --cni-conf-dir DIR --cni-bin-dir DIR [--once]
  meshcap cni uninstall --cni-conf-dir DIR --cni-bin-dir DIR
  meshcap cni agent     --cni-conf-dir DIR --cni-bin-dir DIR [--cri-socket PATH] [--metrics-addr HOST:PORT]
                        [--audit-interval SECONDS] [--repair off|in-place]
  install and agent also take --config-mode chained|owned|standalone (default chained)

CNI mode: the capture is installed by a chained CNI plugin, meshcap-cni, when
the runtime creates a pod's sandbox; the pod needs no privileged init container.

install    copies the meshcap-cni executable into the bin dir (temporary file
           and rename) and inserts one {"type": "meshcap-cni"} entry, last,
           into the first network config in libcni order (*.conf, *.conflist,
           *.json by name); a .conf becomes a .conflist. Other plugins are left
           as they are. Running it again changes nothing. With --once it
           returns; without, it keeps the entry in place like 'agent'.
           --config-mode=owned writes 00-meshcap.conflist instead (the primary's
           plugins plus meshcap-cni, sorting first, following the primary's
           changes); --config-mode=standalone writes ZZZ-meshcap-cni.conf, a
           network of its own for Multus (deploy/cni-multus.yaml defines the
           NetworkAttachmentDefinition default/meshcap-cni; inject with
           --cni --cni-network-attachment default/meshcap-cni).
uninstall  removes the entry from every config (and meshcap's own files),
           then the executable.
agent      the node DaemonSet's process: installs, re-inserts the entry within
           2 s when the primary CNI rewrites the file, reports a config fight,
           serves /readyz (ready only when the first config holds the entry and
           the binary matches) and /metrics on --metrics-addr, writes the API
           fallback's kubeconfig (token by tokenFile), and on SIGTERM leaves
           entry and binary in place (upgrades never open a window).
           With --cri-socket it also audits every injected pod on the node
           every --audit-interval seconds (default 30; 0 turns it off) and,
           with --repair in-place (the default), restores a missing, partial
           or drifted capture in place ('meshcap audit --help' has the states);
           /metrics then carries meshcap_pod_capture_state and the repairs.

The executable installed is meshcap's own single executable (the image's
meshcap; in a checkout dist/sea/meshcap from 'npm run build:sea'), or
$MESHCAP_CNI_PLUGIN. Copied as meshcap-cni it is the plugin, and needs no
Node.js on the node.

Exit codes: 0 done; 2 invalid usage or an unusable network config (one line
naming the file); 3 nothing to install (no plugin build, no conf or bin dir).
`;

export function pluginSource(env: Readonly<Record<string, string | undefined>>): string {
  return env.MESHCAP_CNI_PLUGIN ?? singleExecutablePath();
}

function dirs(values: ReadonlyMap<string, string | true>): { confDir: string; binDir: string } {
  const get = (name: string) => {
    const value = values.get(name);
    if (typeof value !== 'string' || value === '') throw badFlag(`--${name}`, '', 'is required', `pass --${name} DIR (e.g. ${name === 'cni-conf-dir' ? '/etc/cni/net.d' : '/opt/cni/bin'})`);
    return value;
  };
  return { confDir: get('cni-conf-dir'), binDir: get('cni-bin-dir') };
}

function configMode(values: ReadonlyMap<string, string | true>): ConfigMode {
  const value = values.get('config-mode') ?? 'chained';
  if (!(CONFIG_MODES as readonly unknown[]).includes(value)) throw badFlag('--config-mode', String(value), 'is not a config mode', `use ${CONFIG_MODES.join(', ')}`);
  return value as ConfigMode;
}

function parseAddr(text: string): { host: string; port: number } {
  const match = /^(.*):(\d{1,5})$/.exec(text);
  if (!match || Number(match[2]) > 65535) throw badFlag('--metrics-addr', text, 'is not HOST:PORT', 'write e.g. 0.0.0.0:15014');
  return { host: match[1]!.replace(/^\[|\]$/g, '') || '0.0.0.0', port: Number(match[2]) };
}

function fail(ctx: CommandContext, error: unknown): number {
  if (error instanceof ConfigFileError) {
    ctx.stderr(`meshcap cni: ${error.file}: ${error.problem}; nothing was changed\n`);
    return ExitCode.InvalidConfig;
  }
  if (error instanceof InstallError) {
    ctx.stderr(`meshcap cni: ${error.message}; ${error.fix}\n`);
    return ExitCode.Unsupported;
  }
  if (error instanceof ConfigError) {
    ctx.stderr(`meshcap cni: ${error.message}\n`);
    return ExitCode.InvalidConfig;
  }
  ctx.stderr(`meshcap cni: unexpected internal error (please report it): ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  return ExitCode.Unexpected;
}

/** The node audit and repair loop (src/audit), when the agent can reach the CRI and the interval is not 0. */
function auditExtension(values: ReadonlyMap<string, string | true>, ctx: CommandContext): AgentExtension[] {
  const intervalText = values.get('audit-interval');
  const interval = intervalText === undefined ? DEFAULT_AUDIT_INTERVAL_S : Number(intervalText);
  if (typeof intervalText === 'string' && (!/^\d+$/.test(intervalText) || interval > 86_400)) {
    throw badFlag('--audit-interval', intervalText, 'is not a whole number of seconds (0 to 86400)', 'write e.g. --audit-interval 30, or 0 to turn the audit off');
  }
  const repair = values.get('repair') ?? 'in-place';
  if (repair !== 'off' && repair !== 'in-place') throw badFlag('--repair', String(repair), 'is not a repair mode', 'use --repair in-place (the default) or --repair off');
  if (interval === 0 || typeof values.get('cri-socket') !== 'string') return [];
  return [new AuditLoop({ intervalSeconds: interval, repair, sys: realSystem(ctx.env), openCri: async (socket) => new CriClient(socket, { timeoutMs: 10_000 }) })];
}

async function runAgent(values: ReadonlyMap<string, string | true>, ctx: CommandContext): Promise<number> {
  const { confDir, binDir } = dirs(values);
  const metrics = values.get('metrics-addr');
  const cri = values.get('cri-socket');
  const agent = new Agent({
    confDir,
    binDir,
    mode: configMode(values),
    source: pluginSource(ctx.env),
    ...(typeof cri === 'string' ? { criSocket: cri } : {}),
    ...(typeof metrics === 'string' ? { metricsAddr: parseAddr(metrics) } : {}),
    runDir: ctx.env.MESHCAP_CNI_RUN_DIR ?? '/var/run/meshcap-cni',
    serviceAccountDir: ctx.env.MESHCAP_SERVICEACCOUNT_DIR ?? '/var/run/secrets/kubernetes.io/serviceaccount',
    env: ctx.env,
    log: (level, line) => ctx.stderr(`meshcap cni agent ${level}: ${line}\n`),
    extensions: auditExtension(values, ctx),
  });
  if (!existsSync(agent.options.source)) throw new InstallError(`the plugin executable ${agent.options.source} does not exist`, "build it with 'npm run build:sea' (or run the meshcap image, or set MESHCAP_CNI_PLUGIN)");
  await agent.start();
  if (agent.address) ctx.stderr(`meshcap cni agent info: serving /readyz and /metrics on port ${agent.address.port}\n`);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      ctx.stderr(`meshcap cni agent info: ${signal}: stopping; the meshcap-cni entry and executable stay in place\n`);
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  await agent.stop();
  return ExitCode.Ok;
}

export const cniCommand: Command = async (argv, ctx) => {
  const [sub, ...rest] = argv;
  if (sub === 'plugin' || sub === '__netns') {
    // The plugin from a checkout: re-entered as `node bin/meshcap cni __netns ...`.
    return cniEntry({
      argv: sub === '__netns' ? argv : rest,
      env: ctx.env,
      self: [process.execPath, process.argv[1]!, 'cni'],
      readStdin: async () => (await ctx.readStdin()).toString('utf8'),
      stdout: ctx.stdout,
      stderr: ctx.stderr,
    });
  }
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help' || rest.includes('--help') || rest.includes('-h')) {
    (sub === undefined ? ctx.stderr : ctx.stdout)(HELP);
    return sub === undefined ? ExitCode.InvalidConfig : ExitCode.Ok;
  }
  try {
    const spec = { 'cni-conf-dir': 'string', 'cni-bin-dir': 'string', once: 'bool', 'cri-socket': 'string', 'metrics-addr': 'string', 'config-mode': 'string', 'audit-interval': 'string', repair: 'string' } as const;
    const { values, rest: extra } = takeOwnFlags(rest, spec);
    if (extra.length > 0) throw badFlag(extra[0]!, '', `is not a flag of 'meshcap cni ${sub}'`, "run 'meshcap cni --help'");
    if (sub === 'install') {
      const { confDir, binDir } = dirs(values);
      if (!values.has('once')) return await runAgent(values, ctx);
      // Check the config before touching anything; copy the binary before the entry that names it.
      const plan = planConfig(confDir, {}, configMode(values));
      const binary = installBinary(pluginSource(ctx.env), binDir);
      const outcome = commitConfig(plan);
      if (outcome.kind === 'no-config') {
        ctx.stderr(`meshcap cni: ${binary ? 'installed' : 'kept'} ${binDir}/meshcap-cni; no network config in ${confDir} yet: meshcap never creates one (install the primary CNI first, or run 'meshcap cni agent', which waits for it)\n`);
        return ExitCode.Unsupported;
      }
      ctx.stdout(`${binary ? 'installed' : 'unchanged'}: ${binDir}/meshcap-cni\n`);
      ctx.stdout(outcome.kind === 'unchanged' ? `unchanged: ${outcome.file} already holds the meshcap-cni entry\n` : `inserted: the meshcap-cni entry into ${outcome.file}${outcome.converted ? ` (converted from ${outcome.converted}, which was removed)` : ''}\n`);
      return ExitCode.Ok;
    }
    if (sub === 'uninstall') {
      const { confDir, binDir } = dirs(values);
      const result = uninstall(confDir, binDir);
      for (const file of result.configs) ctx.stdout(`removed: the meshcap-cni entry from ${file}\n`);
      ctx.stdout(result.binary ? `removed: ${binDir}/meshcap-cni\n` : `absent: ${binDir}/meshcap-cni\n`);
      return ExitCode.Ok;
    }
    if (sub === 'agent') return await runAgent(values, ctx);
    throw badFlag(sub, '', 'is not a cni subcommand', 'use install, uninstall or agent');
  } catch (error) {
    return fail(ctx, error);
  }
};
