/** Help text, generated from the flag table so it never drifts from what is parsed. */
import { CAPTURE_FLAGS, ENV_ONLY, type FlagSpec } from '../config/flags.js';

export const EXIT_CODES_HELP = `Exit codes:
  0  success (including "already in place, nothing to do")
  1  unexpected error (a bug: please report it)
  2  invalid configuration or usage
  3  the environment cannot support the configuration (binary, table, extension or IPv6 missing)
  4  permission denied (not root, or CAP_NET_ADMIN / CAP_NET_RAW missing)
  5  the xtables lock was not obtained within --lock-timeout
  6  verification failed (the rules or the capture are not what the configuration asks for)`;

function flagLine(spec: FlagSpec): string {
  const name = `${spec.short ? `-${spec.short}, ` : '    '}--${spec.long}${spec.kind === 'string' ? ` ${spec.valueName ?? 'VALUE'}` : ''}`;
  const envs = [spec.env, spec.additionalEnv].filter(Boolean).join(', ');
  const dflt = spec.kind === 'string' && spec.default !== '' ? ` [default ${spec.default}]` : '';
  return `  ${name.padEnd(52)} ${spec.help}${dflt}${envs ? ` (env ${envs})` : ''}`;
}

export function captureHelp(command: string): string {
  const istio = CAPTURE_FLAGS.filter((f) => !f.meshcap && !f.long.startsWith('log_') && f.long !== 'vklog');
  const own = CAPTURE_FLAGS.filter((f) => f.meshcap);
  return `Usage: meshcap ${command} [flags]

Install the mesh's traffic capture in the current network namespace: the same
flags, environment variables and rules as Istio's istio-iptables, applied as one
atomic, idempotent transaction. --dry-run prints what would be applied.

istio-iptables flags:
${istio.map(flagLine).join('\n')}

meshcap options:
${own.map(flagLine).join('\n')}

Environment-only settings (as in Istio):
  ${ENV_ONLY.ownerGroupsInclude.env}          groups whose traffic is captured [default *]
  ${ENV_ONLY.ownerGroupsExclude.env}  groups excluded (with the include list *)
  ${ENV_ONLY.loopbackCidr.env}    the IPv4 "localhost" prefix [default 127.0.0.1/32]
  ${ENV_ONLY.envoyUser.env}                           user whose uid is the default proxy uid [default istio-proxy]
  ${ENV_ONLY.dryRunFilePath.env}                    with --dry-run, also write the trace to this file

Also accepted: pilot-agent's --log_* flags (--log_as_json switches logs to JSON).

${EXIT_CODES_HELP}
`;
}

export const MAIN_HELP = `meshcap: a service-mesh traffic capture you can re-run, trust and debug.

Usage: meshcap <command> [flags]

Commands:
  istio-iptables [flags]   drop-in for Istio's istio-iptables (same flags, env vars and rules)
  apply [flags]            the same command under meshcap's name
  clean                    remove the capture of any config and version, from every backend
  verify [flags]           check the live rules and prove the capture with real connections
  demo                     apply the default istio-init capture in a throwaway namespace and prove it
  doctor [FILE|-]          read logs or rule dumps and name the root cause and the fix
  status [--netns NAME]    is the capture in place, complete, which config, drifted? (exit 1 if not healthy)
  trace --dst A --dport P  simulate one connection through a config's or the live rules
  audit [--repair]         every injected pod on the node (via the CRI): capture ok, missing, drifted, ...; repairs in place
  explain [flags]          a config's rules in plain language; --format mermaid for a diagram
  inject -f FILE|-         add the sidecar (istio-init + istio-proxy) to Kubernetes manifests
  webhook --tls-cert F --tls-key F   the mutating admission webhook (POST /inject)
  cni install|uninstall|agent   CNI mode: chain the meshcap-cni plugin into the node's CNI config, keep it there
  validate                 CNI mode's istio-validation: prove the outbound capture from inside the pod (exit 126 if absent)
  help, --help             this text
  version, --version       print the version

Run 'meshcap <command> --help' for a command's flags.

${EXIT_CODES_HELP}
`;
