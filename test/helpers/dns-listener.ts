/**
 * A DNS server that answers every query NXDOMAIN and records its name, run
 * inside a network namespace: it shows whether a process reached for the
 * name service. Quick answers keep a lookup from waiting on a timeout.
 * flush() drains what was received since the last flush, without sleeping: a resolver
 * waits for the answer, which is sent only after the query is reported, so
 * once the marker written after a command comes back, every query that
 * command made has been read.
 */
import { spawn } from 'node:child_process';

const SCRIPT = `
const dgram = require('node:dgram');
const socket = dgram.createSocket('udp4');
const qname = (m) => { const parts = []; let i = 12; while (i < m.length && m[i] !== 0) { parts.push(m.subarray(i + 1, i + 1 + m[i]).toString()); i += m[i] + 1; } return parts.join('.'); };
socket.on('message', (m, from) => {
  if (m.length < 12) return;
  process.stdout.write('query ' + from.address + ' ' + qname(m) + '\\n', () => {
    const answer = Buffer.from(m);
    answer[2] |= 0x80;
    answer[3] = (answer[3] & 0xf0) | 3;
    socket.send(answer, from.port, from.address);
  });
});
process.stdin.on('data', (d) => { for (const line of d.toString().split('\\n')) if (line) process.stdout.write('mark ' + line + '\\n'); });
process.stdin.on('end', () => socket.close(() => process.exit(0)));
socket.bind(53, process.argv[1], () => process.stdout.write('ready\\n'));
`;

export interface DnsListener {
  /** The queries (`<source> <name>`) received since the previous flush, after a round trip through the listener. */
  flush(): Promise<string[]>;
  stop(): Promise<void>;
}

export async function dnsListenerIn(netns: string, address: string): Promise<DnsListener> {
  const child = spawn('nsenter', [`--net=${netns}`, '--', process.execPath, '-e', SCRIPT, address], { stdio: ['pipe', 'pipe', 'pipe'] });
  let buffer = '';
  let errors = '';
  const queries: string[] = [];
  const waiters = new Map<string, () => void>();
  let exited = false;
  child.stderr.on('data', (d: Buffer) => (errors += d.toString()));
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`DNS listener did not start: ${errors}`)), 15_000);
    waiters.set('ready', () => {
      clearTimeout(timer);
      resolve();
    });
    child.on('close', () => {
      exited = true;
      clearTimeout(timer);
      reject(new Error(`DNS listener exited: ${errors}`));
    });
  });
  child.stdout.on('data', (d: Buffer) => {
    buffer += d.toString();
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (line.startsWith('query ')) queries.push(line.slice(6));
      else waiters.get(line)?.();
    }
  });
  await ready;
  let marks = 0;
  return {
    flush() {
      const mark = `mark ${++marks}`;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('DNS listener did not answer the marker')), 10_000);
        waiters.set(mark, () => {
          clearTimeout(timer);
          resolve(queries.splice(0));
        });
        child.stdin.write(`${marks}\n`);
      });
    },
    stop: () =>
      exited
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
            child.once('close', () => {
              clearTimeout(timer);
              resolve();
            });
            child.stdin.end();
          }),
  };
}
