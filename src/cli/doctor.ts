/**
 * `meshcap doctor [FILE|-] [--json] [--pod NAME [-n NS]]`: from logs and
 * dumps to the likely root cause and its fix. All I/O lives here (files,
 * stdin, kubectl); the analysis itself is the pure `diagnose`.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { firstSentence } from './args.js';
import { diagnose } from '../doctor/classify.js';
import { formatHuman, formatJson } from '../doctor/format.js';
import { gatherPod } from '../doctor/gather.js';
import { decodeInput } from '../doctor/input.js';
import { execRunner, type Runner } from '../doctor/runner.js';
import type { Command, CommandContext } from './context.js';
import { ExitCode } from '../errors.js';

export const DOCTOR_HELP = `Usage: meshcap doctor [FILE|-] [--json] [--pod NAME [-n NS]]

Reads what you would paste into an issue (kubectl logs of istio-init,
istio-validation, istio-proxy, Linkerd proxy-init, kuma-init, Consul
connect-init; kubectl describe/get pod; iptables -S / iptables-save output;
application logs) and prints the likely root causes, best first, each with the
quoted evidence lines, an explanation and the fix. A capture configuration the
input prints (istio-init's "Variables:" block, its Args in kubectl describe,
proxy-init's "Will ignore port" lines) is read with meshcap's own parser: what
it would reject, and what the values mean (e.g. inbound capture off).

  FILE            file to read; '-' reads standard input
  --pod NAME      gather the input with kubectl: pod JSON, events, and current
                  and previous logs of its init and proxy containers
  -n, --namespace NS
                  namespace of --pod (default: kubectl's current namespace)
  --json          print {"causes":[{id,title,confidence,evidence,explanation,fix}]},
                  with "readings":[{text,evidence}] when a configuration was read
  -h, --help      show this help

Evidence is quoted as L<n>: line n of the input (with --pod, of the gathered
text, followed by FILE if one was given too).

Exit status: 0 when the analysis ran (whatever it found), 2 for a usage
mistake or unreadable file, 3 when nothing could be gathered at all.

Examples:
  kubectl logs mypod -c istio-init --previous | meshcap doctor -
  meshcap doctor describe.txt --json
  meshcap doctor --pod mypod -n shop
`;

/** DNS-1123 names, so a value can never be read by kubectl as a flag. */
const POD_NAME = /^[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?$/;
const NAMESPACE = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;

export interface DoctorDeps {
  readonly runner: Runner;
  readonly readFile: (path: string) => Promise<Uint8Array>;
}

const realDeps: DoctorDeps = { runner: execRunner, readFile: (path) => readFile(path) };

export const doctorCommand: Command = (argv, ctx) => runDoctor(argv, ctx, realDeps);

/** The command with its outside world injected (tests fake kubectl and the file system). */
export async function runDoctor(argv: readonly string[], ctx: CommandContext, deps: DoctorDeps): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    return usageError(ctx, firstSentence(error), 'doctor does not accept it', "run 'meshcap doctor --help' for the usage");
  }
  const { values, positionals } = parsed;
  if (values.help === true) {
    ctx.stdout(DOCTOR_HELP);
    return ExitCode.Ok;
  }
  if (positionals.length > 1) {
    return usageError(ctx, `too many inputs (${positionals.join(', ')})`, 'doctor reads one input', "concatenate the files first, or pipe them with '-'");
  }
  const pod = values.pod;
  const namespace = values.namespace;
  if (namespace !== undefined && pod === undefined) {
    return usageError(ctx, '-n/--namespace given without --pod', 'a namespace only applies to gathering', 'add --pod NAME, or drop -n when reading a file');
  }
  if (pod !== undefined && !POD_NAME.test(pod)) {
    return usageError(ctx, `invalid pod name ${JSON.stringify(pod)}`, 'pod names are lowercase DNS names', "use the name shown by 'kubectl get pods'");
  }
  if (namespace !== undefined && !NAMESPACE.test(namespace)) {
    return usageError(ctx, `invalid namespace ${JSON.stringify(namespace)}`, 'namespaces are lowercase DNS labels', "use the name shown by 'kubectl get namespaces'");
  }
  const source = positionals[0];
  if (source === undefined && pod === undefined) {
    return usageError(ctx, 'no input', 'doctor needs logs or dumps to read', "give a FILE, '-' for standard input, or --pod NAME (e.g. kubectl logs POD -c istio-init | meshcap doctor -)");
  }

  const texts: string[] = [];
  if (source !== undefined) {
    try {
      const bytes = source === '-' ? await ctx.readStdin() : await deps.readFile(source);
      texts.push(decodeInput(bytes));
    } catch (error) {
      const what = source === '-' ? 'cannot read standard input' : `cannot read ${JSON.stringify(source)}`;
      return usageError(ctx, what, errorReason(error), "check the path, or pipe the text with '-'");
    }
  }

  let kubectlMissing = false;
  if (pod !== undefined) {
    const result = await gatherPod(pod, namespace, deps.runner);
    kubectlMissing = result.kubectlMissing;
    for (const note of result.notes) ctx.stderr(`meshcap doctor: ${note}\n`);
    if (result.gathered > 0) {
      // Gathered text first; a given file follows under its own header so its lines stay recognisable.
      if (source !== undefined && texts.length > 0) texts[0] = `=== ${source === '-' ? 'standard input' : source} ===\n${texts[0] ?? ''}`;
      texts.unshift(result.text);
    } else if (result.kubectlMissing && texts.length > 0) {
      ctx.stderr('meshcap doctor: kubectl was not found on PATH; analysing the given input only\n');
    }
  }

  if (texts.length === 0) {
    const line = kubectlMissing
      ? `cannot gather pod ${pod ?? ''} — kubectl was not found on PATH — install kubectl, or collect the logs yourself: kubectl logs POD -c istio-init | meshcap doctor -`
      : `cannot gather pod ${pod ?? ''} — kubectl returned nothing usable — check the pod name, namespace and kube context, or pass a FILE`;
    ctx.stderr(`meshcap doctor: ${line}\n`);
    return ExitCode.Unsupported;
  }

  const diagnosis = diagnose(texts.join('\n'));
  ctx.stdout(values.json === true ? formatJson(diagnosis) : formatHuman(diagnosis));
  return ExitCode.Ok;
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      json: { type: 'boolean' },
      pod: { type: 'string' },
      namespace: { type: 'string', short: 'n' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

function usageError(ctx: CommandContext, what: string, why: string, fix: string): number {
  ctx.stderr(`meshcap doctor: ${what} — ${why} — ${fix}\n`);
  return ExitCode.InvalidConfig;
}

function errorReason(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'it is a directory';
    default:
      return error instanceof Error ? error.message : String(error);
  }
}
