/**
 * Reads the facts Istio derives configuration from: interface addresses,
 * resolv.conf and the user database. The only place config-related I/O happens.
 */
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import type { HostFacts } from '../config/types.js';

export function readHostFacts(paths: { resolvConf?: string; passwd?: string } = {}): HostFacts {
  return {
    interfaceAddresses() {
      // Interface by interface, IPv4 before IPv6: the order Go's net.InterfaceAddrs() reports.
      return Object.values(networkInterfaces()).flatMap((addresses) =>
        (addresses ?? [])
          .slice()
          .sort((a, b) => (a.family === b.family ? 0 : a.family === 'IPv4' ? -1 : 1))
          .map((a) => a.address),
      );
    },
    resolvConf() {
      try {
        return readFileSync(paths.resolvConf ?? '/etc/resolv.conf', 'utf8');
      } catch {
        return undefined;
      }
    },
    lookupUid(name) {
      let text: string;
      try {
        text = readFileSync(paths.passwd ?? '/etc/passwd', 'utf8');
      } catch {
        return undefined;
      }
      for (const line of text.split('\n')) {
        const fields = line.split(':');
        if (fields[0] === name && fields[2] && /^[0-9]+$/.test(fields[2])) return Number(fields[2]);
      }
      return undefined;
    },
  };
}
