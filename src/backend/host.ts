/**
 * Reads the facts Istio derives configuration from: interface addresses,
 * resolv.conf and the user database, through the system seam.
 */
import { networkInterfaces } from 'node:os';
import type { HostFacts } from '../config/types.js';
import { kernelInterfaceAddresses } from '../net/kernel-addresses.js';
import { type System, realSystem } from './system.js';

export function readHostFacts(sys: Pick<System, 'readFile'> = realSystem(), paths: { resolvConf?: string; passwd?: string } = {}): HostFacts {
  return {
    interfaceAddresses() {
      // From the kernel, interfaces without carrier included, as Go's net.InterfaceAddrs() (Istio) sees them.
      const fromKernel = kernelInterfaceAddresses(sys.readFile('/proc/net/fib_trie'), sys.readFile('/proc/net/if_inet6'));
      if (fromKernel) return fromKernel;
      // No procfs: libuv's view (running interfaces only), IPv4 first as in Go's order.
      const all = Object.values(networkInterfaces()).flatMap((addresses) => addresses ?? []);
      return [...all.filter((a) => a.family === 'IPv4'), ...all.filter((a) => a.family !== 'IPv4')].map((a) => a.address);
    },
    resolvConf() {
      return sys.readFile(paths.resolvConf ?? '/etc/resolv.conf');
    },
    lookupUid(name) {
      const text = sys.readFile(paths.passwd ?? '/etc/passwd');
      if (text === undefined) return undefined;
      for (const line of text.split('\n')) {
        const fields = line.split(':');
        if (fields[0] === name && fields[2] && /^[0-9]+$/.test(fields[2])) return Number(fields[2]);
      }
      return undefined;
    },
  };
}
