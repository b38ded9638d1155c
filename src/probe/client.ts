/** One connection attempt with a deadline; returns the probe server's answer or why it failed. */
import { connect } from 'node:net';

export type ProbeResult = { readonly ok: true; readonly reply: string } | { readonly ok: false; readonly error: string };

export function probeConnect(host: string, port: number, timeoutMs = 3000, localAddress?: string): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let data = '';
    let settled = false;
    const finish = (result: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const socket = connect({ host, port, ...(localAddress ? { localAddress } : {}) });
    const timer = setTimeout(() => finish({ ok: false, error: `no answer within ${timeoutMs} ms` }), timeoutMs);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      data += chunk;
      if (data.includes('\n')) finish({ ok: true, reply: data.trim() });
    });
    socket.on('end', () => finish(data ? { ok: true, reply: data.trim() } : { ok: false, error: 'closed without an answer' }));
    socket.on('error', (error: NodeJS.ErrnoException) => finish({ ok: false, error: error.code ?? error.message }));
  });
}
