/** A plain HTTP GET to a server on 127.0.0.1 (the agent's /readyz and /metrics), with a hard timeout. */
import { request } from 'node:http';

export function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, timeout: 2000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET 127.0.0.1:${port}${path}: no answer within 2 s`)));
    req.on('error', reject);
    req.end();
  });
}
