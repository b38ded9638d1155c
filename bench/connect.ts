/**
 * Runs inside a bench namespace: a listener on the proxy's outbound port and N
 * sequential TCP connects to an address the capture redirects to it. Every
 * connect is a new conntrack entry, so its SYN walks the nat OUTPUT chains
 * once; prints the median connect time in microseconds. Usage:
 *   node connect.js <dest-ip> <dest-port> <listen-port> <count>
 */
import { createServer, connect } from 'node:net';

const [dest = '198.18.0.2', destPort = '8080', listenPort = '15001', countText = '2000'] = process.argv.slice(2);
const count = Number(countText);

const server = createServer((socket) => socket.destroy());
server.listen(Number(listenPort), '127.0.0.1', async () => {
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    samples.push(
      await new Promise<number>((resolve, reject) => {
        const start = process.hrtime.bigint();
        const socket = connect({ host: dest, port: Number(destPort) });
        socket.once('connect', () => {
          const us = Number(process.hrtime.bigint() - start) / 1e3;
          socket.destroy();
          resolve(us);
        });
        socket.once('error', reject);
      }),
    );
  }
  samples.sort((a, b) => a - b);
  process.stdout.write(`${samples[Math.floor(samples.length / 2)]!.toFixed(2)}\n`);
  server.close();
});
