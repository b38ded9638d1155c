/**
 * The webhook's HTTPS shell around answerReview: routing, limits, certificate
 * reload, metrics, JSON logs and graceful shutdown. Only node:https: the server
 * needs four routes and a body reader, and a framework would add dependencies
 * and per-request overhead for none of the limits that matter here.
 */
import { createHash } from 'node:crypto';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { dirname } from 'node:path';
import { createSecureContext } from 'node:tls';
import type { InjectSettings } from '../inject/settings.js';
import { AnswerCache, answerReview } from './admission.js';
import { Metrics } from './metrics.js';

export interface WebhookOptions {
  readonly certFile: string;
  readonly keyFile: string;
  readonly host: string;
  readonly port: number;
  readonly settings: InjectSettings;
  /** Bodies above this are refused with 413 (Istio: 6 MiB; the API server sends at most ~3 MiB objects). */
  readonly maxBodyBytes: number;
  /** A request (headers and body) not complete within this gets 408. */
  readonly requestTimeoutMs: number;
  /** How often the certificate files are re-read in addition to watching them. */
  readonly certPollMs: number;
  /** Remembered answers by pod content (0 disables); see AnswerCache. */
  readonly cacheSize?: number;
  /** A TLS handshake not done within this drops the connection [10 s]. */
  readonly handshakeTimeoutMs?: number;
  /** A socket with no traffic for this long is closed [40 s; above the 30 s keep-alive]. */
  readonly idleSocketTimeoutMs?: number;
  /** Log one line per /inject request (errors are always logged). */
  readonly logRequests: boolean;
  readonly log: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

export interface Webhook {
  readonly server: Server;
  readonly metrics: Metrics;
  /** Resolves once listening; the port is the bound one (0 picks a free port). */
  readonly listening: Promise<{ port: number }>;
  /** Stop being ready (readyz 503, connections closed after their current answer); keep serving. */
  beginDrain(): void;
  /** Stop being ready, finish in-flight requests (at most graceMs), close. */
  shutdown(graceMs: number): Promise<void>;
  /** Re-read the certificate files now (also done on change). */
  reloadCertificates(): boolean;
}

const HANDSHAKE_TIMEOUT_MS = 10_000;
const IDLE_SOCKET_TIMEOUT_MS = 40_000;
/** The API servers of even a large cluster keep a few hundred connections; this is far above that. */
const MAX_CONNECTIONS = 4096;

export function startWebhook(options: WebhookOptions): Webhook {
  const metrics = new Metrics();
  const cache = new AnswerCache(options.cacheSize ?? 256);
  const { log } = options;
  let certDigest = '';
  let shuttingDown = false;

  const readPair = () => {
    const cert = readFileSync(options.certFile);
    const key = readFileSync(options.keyFile);
    return { cert, key, digest: createHash('sha256').update(cert).update(key).digest('hex') };
  };
  // The first load must succeed: without a certificate there is nothing to serve.
  const first = readPair();
  certDigest = first.digest;
  const server = createServer(
    // A client that connects and never finishes the handshake is dropped.
    { cert: first.cert, key: first.key, minVersion: 'TLSv1.2', handshakeTimeout: options.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS },
    (req, res) => void handle(req, res),
  );
  server.requestTimeout = options.requestTimeoutMs;
  server.headersTimeout = Math.min(options.requestTimeoutMs, 60_000);
  server.keepAliveTimeout = 30_000;
  // Sockets idle with no request in progress (after the handshake, before the first request) are closed too;
  // and the number of open connections is bounded, so idle sockets cannot exhaust descriptors.
  server.timeout = options.idleSocketTimeoutMs ?? IDLE_SOCKET_TIMEOUT_MS;
  server.maxConnections = MAX_CONNECTIONS;
  // Node's handshake timeout starts with the first byte: a client that connects and sends nothing is dropped here.
  const handshakeTimeoutMs = options.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS;
  server.on('connection', (socket: Socket) => {
    const timer = setTimeout(() => {
      if (socket.bytesRead === 0) socket.destroy();
    }, handshakeTimeoutMs);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
  });
  server.on('tlsClientError', () => {
    // Scanners and health probes that close mid-handshake are normal; nothing to log at this rate.
  });
  server.on('clientError', (_error, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });

  const reloadCertificates = (): boolean => {
    let pair;
    try {
      pair = readPair();
      if (pair.digest === certDigest) return true;
      // Validates that key and certificate belong together before anything changes.
      createSecureContext({ cert: pair.cert, key: pair.key });
    } catch (error) {
      // Mid-rotation the two files can briefly disagree; keep serving the old pair and try again later.
      metrics.certReload(false);
      log('warn', 'certificate reload failed; the previous certificate stays in use', { error: (error as Error).message });
      return false;
    }
    server.setSecureContext({ cert: pair.cert, key: pair.key, minVersion: 'TLSv1.2' });
    certDigest = pair.digest;
    metrics.certReload(true);
    log('info', 'certificate reloaded', { sha256: pair.digest.slice(0, 16) });
    return true;
  };

  // Secrets mounted by Kubernetes change by swapping a symlink in the directory, so watch the directories;
  // polling covers filesystems where watching does not work.
  const watchers: FSWatcher[] = [];
  for (const dir of new Set([dirname(options.certFile), dirname(options.keyFile)])) {
    try {
      watchers.push(watch(dir, { persistent: false }, () => scheduleReload()));
    } catch (error) {
      log('warn', 'cannot watch the certificate directory; relying on polling', { dir, error: (error as Error).message });
    }
  }
  let reloadTimer: NodeJS.Timeout | undefined;
  const scheduleReload = () => {
    // Debounced: one rotation touches several files.
    if (reloadTimer) clearTimeout(reloadTimer);
    reloadTimer = setTimeout(() => void reloadCertificates(), 100);
    reloadTimer.unref();
  };
  const poll = setInterval(() => void reloadCertificates(), options.certPollMs);
  poll.unref();

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = process.hrtime.bigint();
    const path = (req.url ?? '/').split('?')[0]!;
    const finish = (code: number, body: string, type: string, extra: Record<string, unknown> = {}) => {
      if (res.headersSent || res.destroyed) return;
      res.writeHead(code, {
        'content-type': type,
        'content-length': Buffer.byteLength(body),
        ...(shuttingDown ? { connection: 'close' } : {}),
      });
      res.end(body);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      metrics.request(path, code, seconds);
      if (path.startsWith('/inject') && (options.logRequests || code >= 500)) {
        log(code >= 500 ? 'error' : 'info', 'request', { method: req.method, path, code, ms: Math.round(seconds * 1e6) / 1e3, ...extra });
      }
    };
    const json = (code: number, value: unknown, extra?: Record<string, unknown>) =>
      finish(code, JSON.stringify(value), 'application/json', extra);
    const fail = (code: number, message: string) => {
      metrics.outcome('error');
      json(code, { error: message }, { error: message });
      // Unread body bytes must not be parsed as the next request on this connection.
      if (!req.complete) req.destroy();
    };

    try {
      if (path === '/healthz' || path === '/readyz' || path === '/metrics') {
        if (req.method !== 'GET' && req.method !== 'HEAD') return fail(405, `${req.method} is not allowed on ${path}`);
        if (path === '/metrics') return finish(200, metrics.render(), 'text/plain; version=0.0.4; charset=utf-8');
        if (path === '/readyz' && shuttingDown) return finish(503, 'shutting down\n', 'text/plain');
        return finish(200, 'ok\n', 'text/plain');
      }
      if (path !== '/inject' && !path.startsWith('/inject/')) return fail(404, `no route ${path}`);
      if (req.method !== 'POST') return fail(405, `${req.method} is not allowed on /inject: use POST`);
      const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      if (type !== 'application/json') return fail(415, `content-type ${JSON.stringify(req.headers['content-type'] ?? '')} is not application/json`);
      const declared = Number(req.headers['content-length'] ?? NaN);
      if (declared > options.maxBodyBytes) return fail(413, `body of ${declared} bytes is over the ${options.maxBodyBytes}-byte limit`);

      const body = await readBody(req, options.maxBodyBytes, options.requestTimeoutMs);
      if (body === 'too-large') return fail(413, `body is over the ${options.maxBodyBytes}-byte limit`);
      if (body === 'timeout') return fail(408, `body not received within ${options.requestTimeoutMs} ms`);
      if (body === 'aborted') {
        metrics.outcome('error');
        return;
      }
      const answer = answerReview(body.toString('utf8'), options.settings, cache);
      metrics.outcome(answer.outcome);
      if (answer.cached) metrics.cacheHit();
      finish(answer.status, answer.body, 'application/json', { uid: answer.uid, outcome: answer.outcome, cached: answer.cached, detail: answer.message });
    } catch (error) {
      // A bug, not a client mistake: answer 500 (the API server applies failurePolicy) and keep serving.
      log('error', 'internal error', { error: (error as Error).stack ?? String(error) });
      fail(500, 'internal error');
    }
  }

  const listening = new Promise<{ port: number }>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      const address = server.address();
      resolve({ port: typeof address === 'object' && address ? address.port : options.port });
    });
  });

  const beginDrain = () => {
    shuttingDown = true;
  };

  const shutdown = (graceMs: number): Promise<void> => {
    shuttingDown = true;
    clearInterval(poll);
    if (reloadTimer) clearTimeout(reloadTimer);
    for (const watcher of watchers) watcher.close();
    return new Promise((resolve) => {
      const force = setTimeout(() => {
        server.closeAllConnections();
        resolve();
      }, graceMs);
      force.unref();
      server.close(() => {
        clearTimeout(force);
        resolve();
      });
      server.closeIdleConnections();
    });
  };

  return { server, metrics, listening, beginDrain, shutdown, reloadCertificates };
}

function readBody(req: IncomingMessage, limit: number, timeoutMs: number): Promise<Buffer | 'too-large' | 'timeout' | 'aborted'> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const settle = (value: Buffer | 'too-large' | 'timeout' | 'aborted') => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.removeAllListeners('data');
      resolve(value);
    };
    const timer = setTimeout(() => settle('timeout'), timeoutMs);
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) settle('too-large');
      else chunks.push(chunk);
    });
    req.on('end', () => settle(Buffer.concat(chunks)));
    req.on('error', () => settle('aborted'));
    req.on('close', () => {
      if (!req.complete) settle('aborted');
    });
  });
}
