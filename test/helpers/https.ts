/** A small HTTPS client for the webhook tests (127.0.0.1 only), with a hard timeout so no test can hang. */
import { request, Agent } from 'node:https';

export interface Reply {
  readonly status: number;
  readonly body: string;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly fingerprint?: string;
}

export function send(
  port: number,
  options: { method?: string; path?: string; headers?: Record<string, string>; body?: string | Buffer; ca?: string; agent?: Agent; timeoutMs?: number },
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: options.method ?? 'POST',
        path: options.path ?? '/inject',
        headers: options.headers ?? { 'content-type': 'application/json' },
        ca: options.ca,
        rejectUnauthorized: options.ca !== undefined,
        agent: options.agent ?? false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        const fingerprint = (res.socket as unknown as { getPeerCertificate?: () => { fingerprint256?: string } }).getPeerCertificate?.()?.fingerprint256;
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers, fingerprint }));
        res.on('error', reject);
      },
    );
    req.setTimeout(options.timeoutMs ?? 10_000, () => req.destroy(new Error('client timeout: the server did not answer')));
    req.on('error', reject);
    req.end(options.body);
  });
}
