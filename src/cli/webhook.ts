/** `meshcap webhook`: argument wiring, signals and JSON logs for the admission webhook (src/webhook). */
import { ConfigError, UsageError } from '../config/parse.js';
import { parsePort } from '../config/values.js';
import { startWebhook } from '../webhook/server.js';
import { parseCommandArgs } from './args.js';
import type { Command } from './context.js';
import { ExitCode } from '../errors.js';
import { SETTINGS_OPTIONS, settingsFromOptions } from './inject.js';
import { reportError } from './report.js';

export const WEBHOOK_HELP = `Usage: meshcap webhook --tls-cert FILE --tls-key FILE [options]

Serve the mutating admission webhook over HTTPS: POST /inject takes an
admission.k8s.io/v1 AdmissionReview of a Pod and answers with a JSON Patch from
the same engine as 'meshcap inject'. Invalid annotations are answered with
allowed: false (the pod is rejected with the message). Certificate files are
reloaded when they change, without a restart. GET /healthz, /readyz, /metrics.
Logs are JSON lines on stderr. SIGTERM: /readyz fails, in-flight requests
finish, then the server exits.

Options:
      --tls-cert FILE            PEM certificate (chain)
      --tls-key FILE             PEM private key
      --address ADDR             listen address [default 0.0.0.0]
      --port PORT                listen port [default 8443]
      --max-body-bytes N         larger bodies get 413 [default 6291456]
      --request-timeout SECONDS  incomplete requests get 408 [default 10]
      --shutdown-delay SECONDS   on SIGTERM, keep serving while endpoints drain [default 3]
      --shutdown-grace SECONDS   then wait at most this for in-flight requests [default 10]
      --cert-poll SECONDS        also re-read the certificate this often [default 10]
      --cache-size N             remember answers for N distinct pods (replicas of one workload
                                 are identical pods); 0 disables [default 256]
      --quiet                    no per-request log lines (errors are still logged)
  and the injection options of 'meshcap inject' (--init-image, --image, --hub, --tag,
  --native-sidecars, --hold-application, --rewrite-app-probes, --template, --revision,
  --native-nftables, --cni, --cni-network-attachment, --network).
`;

function seconds(name: string, text: string | undefined, fallback: number, max: number, min = 0): number {
  if (text === undefined) return fallback;
  if (!/^[0-9]+(\.[0-9]+)?$/.test(text) || Number(text) > max || Number(text) < min) {
    throw new ConfigError(`--${name}`, text, 'is not a number of seconds in range', `give ${min} to ${max}`, '');
  }
  return Number(text);
}

export const webhookCommand: Command = async (argv, ctx) => {
  try {
    const values = parseCommandArgs(argv, {
      help: { type: 'boolean', short: 'h' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      address: { type: 'string' },
      port: { type: 'string' },
      'max-body-bytes': { type: 'string' },
      'request-timeout': { type: 'string' },
      'shutdown-delay': { type: 'string' },
      'shutdown-grace': { type: 'string' },
      'cert-poll': { type: 'string' },
      quiet: { type: 'boolean' },
      'cache-size': { type: 'string' },
      ...SETTINGS_OPTIONS,
    });
    if (values.help) {
      ctx.stdout(WEBHOOK_HELP);
      return ExitCode.Ok;
    }
    if (!values['tls-cert'] || !values['tls-key']) throw new UsageError('--tls-cert and --tls-key are required');
    const portText = values.port ?? '8443';
    // 0 asks the kernel for a free port (tests, benchmarks); the bound port is logged.
    const port = portText === '0' ? { ok: true as const, value: 0 } : parsePort(portText);
    if (!port.ok) throw new ConfigError('--port', portText, port.problem.problem, port.problem.allowed, '');
    const maxText = values['max-body-bytes'] ?? '6291456';
    if (!/^[0-9]{1,9}$/.test(maxText) || Number(maxText) < 1024) {
      throw new ConfigError('--max-body-bytes', maxText, 'is not a byte count in range', 'give 1024 to 999999999', '');
    }
    const cacheText = values['cache-size'] ?? '256';
    if (!/^[0-9]{1,6}$/.test(cacheText)) throw new ConfigError('--cache-size', cacheText, 'is not a count', 'give 0 to 999999', '');
    const settings = settingsFromOptions(values);
    const log = (level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown> = {}) =>
      ctx.stderr(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`);

    // No 0 ("no limit"): a request must always be bounded, or slow clients hold the server.
    const requestTimeoutMs = seconds('request-timeout', values['request-timeout'], 10, 300, 1) * 1000;
    const certPollMs = seconds('cert-poll', values['cert-poll'], 10, 3600, 1) * 1000;
    const delay = seconds('shutdown-delay', values['shutdown-delay'], 3, 300) * 1000;
    const grace = seconds('shutdown-grace', values['shutdown-grace'], 10, 300) * 1000;
    let webhook;
    try {
      webhook = startWebhook({
        certFile: values['tls-cert'],
        keyFile: values['tls-key'],
        host: values.address ?? '0.0.0.0',
        port: port.value,
        settings,
        maxBodyBytes: Number(maxText),
        requestTimeoutMs,
        certPollMs,
        logRequests: !values.quiet,
        cacheSize: Number(cacheText),
        log,
      });
    } catch (error) {
      throw new ConfigError('--tls-cert/--tls-key', `${values['tls-cert']}, ${values['tls-key']}`, `cannot be loaded: ${(error as Error).message}`, 'give a readable PEM certificate and its private key', '');
    }
    const { port: bound } = await webhook.listening;
    log('info', 'listening', { address: values.address ?? '0.0.0.0', port: bound, initImage: settings.initStyle, native: settings.nativeSidecars });
    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        log('info', 'shutting down', { signal, delayMs: delay, graceMs: grace });
        // Endpoints are removed asynchronously after SIGTERM: readyz fails from now on, but requests are
        // still answered for a moment, then in-flight ones get the grace period.
        webhook.beginDrain();
        setTimeout(() => void webhook.shutdown(grace).then(resolve), delay);
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
    log('info', 'stopped');
    return ExitCode.Ok;
  } catch (error) {
    return reportError(error, ctx, 'webhook');
  }
};
