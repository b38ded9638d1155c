/**
 * Interface addresses as the kernel lists them, interfaces without carrier (or
 * down) included, parsed from procfs text. Pure.
 *
 * Istio reads Go's net.InterfaceAddrs(): one netlink RTM_GETADDR dump, which
 * the kernel answers family by family, every IPv4 address before any IPv6 one.
 * Node's os.networkInterfaces() (libuv's getifaddrs) drops interfaces that are
 * not IFF_UP and IFF_RUNNING, so a pod whose eth0 has no carrier yet would look
 * address-less. procfs keeps them: /proc/net/fib_trie holds a "/32 host LOCAL"
 * entry per local IPv4 address, /proc/net/if_inet6 one line per IPv6 address.
 */
import { formatIp, parseIp } from './ip.js';

/** Local IPv4 addresses from /proc/net/fib_trie, in first-seen order, without duplicates (the trie is printed per table). */
export function ipv4FromFibTrie(text: string): string[] {
  const seen = new Set<string>();
  let candidate: string | undefined;
  for (const line of text.split('\n')) {
    const leaf = /^\s*\|-- (\d+\.\d+\.\d+\.\d+)$/.exec(line);
    if (leaf) {
      candidate = leaf[1];
      continue;
    }
    if (candidate !== undefined && /^\s*\/32 host LOCAL\b/.test(line)) seen.add(candidate);
  }
  return [...seen];
}

/** IPv6 addresses from /proc/net/if_inet6 (`hex ifindex prefix scope flags name`), ordered by interface index as netlink dumps them. */
export function ipv6FromIfInet6(text: string): string[] {
  const rows: { address: string; index: number; order: number }[] = [];
  for (const [order, line] of text.split('\n').entries()) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 6 || !/^[0-9a-f]{32}$/i.test(fields[0]!)) continue;
    const groups = fields[0]!.match(/.{4}/g)!.join(':');
    const parsed = parseIp(groups);
    if (!parsed) continue;
    rows.push({ address: formatIp(parsed), index: Number.parseInt(fields[1]!, 16), order });
  }
  return rows.sort((a, b) => a.index - b.index || a.order - b.order).map((row) => row.address);
}

/** Every address, IPv4 first (Go's order); undefined when neither file could be read. */
export function kernelInterfaceAddresses(fibTrie: string | undefined, ifInet6: string | undefined): string[] | undefined {
  if (fibTrie === undefined && ifInet6 === undefined) return undefined;
  return [...(fibTrie === undefined ? [] : ipv4FromFibTrie(fibTrie)), ...(ifInet6 === undefined ? [] : ipv6FromIfInet6(ifInet6))];
}
