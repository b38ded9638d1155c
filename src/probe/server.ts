/**
 * A tiny TCP responder used to prove where connections land: it answers every
 * connection with one line naming itself and the local address and port the
 * connection reached (for TPROXY that is the original destination). Used by
 * `demo`, by `verify` and by the integration tests.
 */
import { type AddressInfo, createServer, type Server } from 'node:net';

export interface ProbeServer {
  readonly ports: readonly number[];
  close(): Promise<void>;
}

export function probeReply(tag: string, localAddress: string, localPort: number): string {
  return `${tag} ${localAddress.replace(/^::ffff:/, '')} ${localPort}`;
}

/** Listens on every port (all addresses, both families); resolves once all are listening. */
export async function startProbeServer(ports: readonly number[], tag: string, host = '::'): Promise<ProbeServer> {
  const servers: Server[] = [];
  try {
    for (const port of ports) {
      const server = createServer((socket) => {
        socket.on('error', () => {});
        socket.end(`${probeReply(tag, socket.localAddress ?? '?', socket.localPort ?? 0)}\n`);
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ port, host, ipv6Only: false }, () => resolve());
      });
      servers.push(server);
    }
  } catch (error) {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    throw error;
  }
  return {
    ports: servers.map((s) => (s.address() as AddressInfo).port),
    close: () => Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r())))).then(() => {}),
  };
}
