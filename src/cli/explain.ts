/** `meshcap explain [flags]`: a configuration's capture in plain language, or as a Mermaid diagram. */
import { readHostFacts } from '../backend/host.js';
import { parseCaptureConfig } from '../config/parse.js';
import { explainConfig, renderExplainText, renderMermaid } from '../explain/explain.js';
import { buildRuleset } from '../rules/build.js';
import { defineCommand } from './command.js';
import type { Command } from './context.js';
import { ExitCode } from '../errors.js';
import { EXIT_CODES_HELP } from './help.js';
import { badFlag, takeOwnFlags } from './own-flags.js';

const HELP = `Usage: meshcap explain [--format text|mermaid|json] [--family ipv4|ipv6] [istio-iptables flags]

Explains the capture a configuration sets up: what is captured (outbound
destinations and ports, inbound ports), what is exempt and why (the proxy's
uid/gid, excluded ports, CIDRs and interfaces, localhost, the 127.0.0.6
passthrough, the 15008 tunnel port, DNS), then every rule chain by chain with
the reason it exists. Takes the same flags and environment as 'meshcap apply'.
--format mermaid prints a Mermaid flowchart of hooks, chains, jumps and targets
(IPv4 rules unless --family ipv6).

${EXIT_CODES_HELP}
`;

export const explainCommand: Command = defineCommand({
  name: 'explain',
  help: HELP,
  captureFlags: true,
  async run({ argv, ctx }) {
    const { values, rest } = takeOwnFlags(argv, { format: 'string', family: 'string' });
    const format = String(values.get('format') ?? 'text');
    if (!['text', 'mermaid', 'json'].includes(format)) throw badFlag('--format', format, 'is not a known format', 'use text, mermaid or json');
    const family = String(values.get('family') ?? 'ipv4');
    if (family !== 'ipv4' && family !== 'ipv6') throw badFlag('--family', family, 'is not a family', 'use ipv4 or ipv6');
    const config = parseCaptureConfig(rest, ctx.env, readHostFacts());
    if (family === 'ipv6' && !config.ipv6.enabled) {
      throw badFlag('--family', family, `has no rules in this configuration (IPv6 is off: ${config.ipv6.reason})`, 'add --ipv6=true, or use --family ipv4');
    }
    const ruleset = buildRuleset(config);
    if (format === 'mermaid') {
      ctx.stdout(renderMermaid(ruleset, family));
      return ExitCode.Ok;
    }
    const explanation = explainConfig(config, ruleset);
    if (format === 'json') ctx.stdout(`${JSON.stringify(explanation, null, 2)}\n`);
    else ctx.stdout(renderExplainText(explanation, rest.map((a) => (a === '' || /[\s*'"]/.test(a) ? `'${a}'` : a)).join(' ')));
    return ExitCode.Ok;
  },
});
