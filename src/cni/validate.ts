/**
 * The validation init container of CNI mode (`istio-validation`): no
 * capabilities, no rule reading; it proves the capture the node installed
 * with a real connection whose both ends are in this pod, and waits (bounded)
 * for the capture to appear, so a repair in place lets the pod go on.
 *
 *  - as the proxy uid (Istio's istio-validation): the proxy's connection over
 *    lo to 127.0.0.6 must land on the inbound capture port, Istio's probe;
 *  - as any other uid: an app connection to a reserved address must land on
 *    the proxy's outbound port: the outbound path Istio's probe cannot see.
 *
 * Failure exits 126 with Istio's first line, which Istio's repair controller
 * and `meshcap doctor` both match.
 */
import { randomBytes } from 'node:crypto';
import { createConnection, createServer, type Server } from 'node:net';
import type { CaptureConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import { planProbes } from '../verify/probes.js';

export const VALIDATION_EXIT_CODE = 126;
/** Istio's own text (tools/istio-iptables/pkg/cmd/root.go): the repair controller and people grep for it. */
export const ISTIO_VALIDATION_LINE = 'iptables validation failed; workload is not ready for Istio.';
const ISTIO_PROBE_HOST = '127.0.0.6';
const ISTIO_PROBE_PORT = 15002;

interface Attempt {
  readonly target: string;
  readonly expectPort: number;
  readonly path: string;
  readonly connect: () => Promise<string>;
}

function listen(port: number, reply: (localPort: number) => string): Promise<Server> {
  const server = createServer((socket) => {
    socket.on('error', () => {});
    socket.end(`${reply(socket.localPort ?? 0)}\n`);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => resolve(server));
  });
}

function connect(host: string, port: number, timeoutMs: number, localAddress?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host, port, timeout: timeoutMs, ...(localAddress ? { localAddress } : {}) });
    let data = '';
    socket.on('data', (chunk: Buffer) => (data += chunk.toString()));
    socket.on('end', () => resolve(data.trim()));
    socket.on('timeout', () => socket.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    socket.on('error', reject);
  });
}

export interface ValidationResult {
  readonly ok: boolean;
  readonly lines: readonly string[];
}

export async function validateCapture(config: CaptureConfig, log: Logger, uid = process.getuid?.() ?? 0, gid = process.getgid?.() ?? 0): Promise<ValidationResult> {
  const nonce = randomBytes(6).toString('hex');
  const asProxy = config.proxyUids.includes(String(uid)) || config.proxyGids.includes(String(gid));
  const timeoutMs = config.probeTimeoutMs;
  let attempt: Attempt;
  if (asProxy) {
    attempt = {
      target: `${ISTIO_PROBE_HOST}:${ISTIO_PROBE_PORT}`,
      expectPort: config.inboundCapturePort,
      path: `the proxy's connection over lo to ${ISTIO_PROBE_HOST}:${ISTIO_PROBE_PORT} is redirected to the inbound capture port ${config.inboundCapturePort}`,
      connect: () => connect(ISTIO_PROBE_HOST, ISTIO_PROBE_PORT, 1000, '127.0.0.1'),
    };
  } else {
    const probe = planProbes(config).probes.find((p) => p.expect === 'outbound-capture');
    if (!probe) return { ok: false, lines: [`this configuration captures no IPv4 outbound destination: nothing an app connection could prove (${planProbes(config).skipped.join('; ')})`] };
    attempt = {
      target: `${probe.host}:${probe.port}`,
      expectPort: config.proxyPort,
      path: `an app connection (uid ${uid}) to ${probe.host}:${probe.port} is redirected to the proxy's outbound port ${config.proxyPort}`,
      connect: () => connect(probe.host, probe.port, 1000),
    };
  }
  const servers: Server[] = [];
  const reply = (port: number) => `meshcap-validation ${nonce} ${port}`;
  try {
    for (const port of new Set([config.proxyPort, config.inboundCapturePort])) {
      try {
        servers.push(await listen(port, reply));
      } catch (error) {
        return { ok: false, lines: [`cannot listen on 127.0.0.1:${port} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}): the validation must run before the proxy starts`] };
      }
    }
    const deadline = Date.now() + timeoutMs;
    let last = '';
    for (let round = 1; ; round++) {
      try {
        const answer = await attempt.connect();
        const match = new RegExp(`^meshcap-validation ${nonce} (\\d+)$`).exec(answer);
        if (match && Number(match[1]) === attempt.expectPort) {
          log.info(`validation passed${round > 1 ? ` after ${round} attempts` : ''}: ${attempt.path}`);
          return { ok: true, lines: [] };
        }
        last = match ? `landed on port ${match[1]}, not ${attempt.expectPort}` : `answered by something else: ${JSON.stringify(answer.slice(0, 80))}`;
      } catch (error) {
        last = `${(error as NodeJS.ErrnoException).code ?? ''} ${(error as Error).message}`.trim();
      }
      // Nothing is printed while waiting: on failure Istio's line must be the first one.
      const left = deadline - Date.now();
      if (left <= 0) break;
      await new Promise((resolve) => setTimeout(resolve, Math.min(500, left)));
    }
    return {
      ok: false,
      lines: [
        `meshcap: the capture is not in place: ${attempt.path} did not happen within ${timeoutMs} ms (last attempt: ${last}).`,
        'cause: in CNI mode the node installs the capture when the sandbox is created; this pod\'s sandbox was most likely created before meshcap-cni was in the node\'s CNI config (node start, or the agent not ready), or the config was rewritten without the entry.',
        "fix: check the node with 'meshcap doctor' and the meshcap-cni-node agent's readiness; then delete this pod so it is re-created with the capture (a node agent with repair enabled does this in place).",
      ],
    };
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}
