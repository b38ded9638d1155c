/** One connection attempt with a deadline; returns the probe server's answer or why it failed. */
import { connect } from 'node:net';

/** localPort: the connection's own source port, to find it in conntrack. */
export type ProbeResult = { readonly ok: true; readonly reply: string; readonly localPort?: number } | { readonly ok: false; readonly error: string };

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
      if (data.includes('\n')) finish({ ok: true, reply: data.trim(), localPort: socket.localPort ?? 0 });
    });
    socket.on('end', () => finish(data ? { ok: true, reply: data.trim(), localPort: socket.localPort ?? 0 } : { ok: false, error: 'closed without an answer' }));
    socket.on('error', (error: NodeJS.ErrnoException) => finish({ ok: false, error: error.code ?? error.message }));
  });
}

/** probeConnect, self-contained, for a child running as another uid. */
export const INLINE_CONNECT = `
const [host, port, timeout, source] = process.argv.slice(1);
const net = require('node:net');
let data = '', done = false;
const finish = (r) => { if (done) return; done = true; clearTimeout(t); s.destroy(); process.stdout.write(JSON.stringify(r) + '\\n'); };
const s = net.connect(source ? { host, port: Number(port), localAddress: source } : { host, port: Number(port) });
const t = setTimeout(() => finish({ ok: false, error: 'no answer within ' + timeout + ' ms' }), Number(timeout));
s.setEncoding('utf8');
s.on('data', (c) => { data += c; if (data.includes('\\n')) finish({ ok: true, reply: data.trim(), localPort: s.localPort }); });
s.on('end', () => finish(data ? { ok: true, reply: data.trim(), localPort: s.localPort } : { ok: false, error: 'closed without an answer' }));
s.on('error', (e) => finish({ ok: false, error: e.code || e.message }));
`;

/** Runs probeConnect as another user through a node child (meshcap's files may be unreadable to it). */
export function inlineConnectArgs(host: string, port: number, timeoutMs: number, source = ''): string[] {
  return ['-e', INLINE_CONNECT, host, String(port), String(timeoutMs), source];
}
