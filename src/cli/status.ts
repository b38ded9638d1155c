/** `meshcap status`: is the capture in place in this (or another) namespace, complete, and the expected one? */
import { readHostFacts } from '../backend/host.js';
import { realSystem } from '../backend/system.js';
import { parseCaptureConfig } from '../config/parse.js';
import { ExitCode, MeshcapError } from '../errors.js';
import { buildRuleset } from '../rules/build.js';
import { analyzeStatus } from '../status/analyze.js';
import { readNamespace } from '../status/gather.js';
import { renderStatusText } from '../status/render.js';
import { roundTrip } from '../status/roundtrip.js';
import { defineCommand } from './command.js';
import type { Command } from './context.js';
import { reRunInRequestedNamespace, takeOwnFlags } from './own-flags.js';

const HELP = `Usage: meshcap status [--json] [--netns NAME | --pid PID] [istio-iptables flags to compare against]

Reports the mesh capture of a network namespace, per backend (iptables-legacy,
iptables-nft, native nftables): mesh rules present, complete (every hook jumps
into its chains, every target chain does something, TPROXY routing, ::6 on lo),
the istio-iptables flags that would write them (derived from the rules; checked
by rebuilding them), rules of other tools, and warnings such as rules that the
plain 'iptables' command cannot show. With istio-iptables flags (or their
environment variables) it also lists every difference from that configuration.
Reads only; changes nothing.

Exit codes:
  0  healthy: the capture is in place in one backend, complete (and matches the given flags)
  1  absent, incomplete, in several backends, or different from the given flags
  2  invalid usage
  4  permission denied (reading the rules needs root / CAP_NET_ADMIN)
`;

export const statusCommand: Command = defineCommand({
  name: 'status',
  help: HELP,
  async run({ argv, ctx }) {
    const { values, rest } = takeOwnFlags(argv, { json: 'bool', netns: 'string', pid: 'string' });
    const sys = realSystem(ctx.env);
    const elsewhere = await reRunInRequestedNamespace(values, sys, 'status', argv, ctx);
    if (elsewhere !== undefined) return elsewhere;
    // Compare only when a configuration is described, on the command line or in the environment.
    const describesConfig = rest.length > 0;
    const config = describesConfig ? parseCaptureConfig(rest, ctx.env, readHostFacts()) : undefined;
    const read = await readNamespace(sys);
    const unreadable = [read.legacy, read.nft].filter((b) => b.problem && /denied|not permitted|must be root/i.test(b.problem));
    if (unreadable.length > 0) {
      throw new MeshcapError({ exitCode: ExitCode.Permission, what: 'reading the netfilter rules', why: unreadable[0]!.problem!, fix: 'run meshcap status as root (or with CAP_NET_ADMIN)' });
    }
    const report = analyzeStatus({
      read,
      ...(config ? { config, ruleset: buildRuleset(config) } : {}),
      roundTrip: (derived, source) => roundTrip(read, derived, source),
    });
    const namespace = ctx.env.MESHCAP_NETNS_LABEL ?? 'this network namespace';
    ctx.stdout(values.has('json') ? `${JSON.stringify(report, null, 2)}\n` : renderStatusText(report, namespace));
    return report.health === 'healthy' ? ExitCode.Ok : ExitCode.NotHealthy;
  },
});
