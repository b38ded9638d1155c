/**
 * Strict IP address and prefix parsing, with Go `net/netip`-compatible text
 * output, because Istio prints CIDRs through `netip.Prefix.String()` and our
 * rules must be byte-identical to its goldens. Pure: no I/O.
 */

export type IpFamily = 4 | 6;

export interface IpAddress {
  readonly family: IpFamily;
  /** 4 or 16 bytes, network order. */
  readonly bytes: readonly number[];
}

export interface Cidr {
  readonly addr: IpAddress;
  readonly prefix: number;
}

const DECIMAL_OCTET = /^(0|[1-9][0-9]{0,2})$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

/** Four decimal octets without leading zeros (their values are checked below). */
const IPV4 = /^(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})$/;

export function parseIpv4(text: string): IpAddress | undefined {
  // One match, no split: lists of thousands of excludes come through here.
  const m = IPV4.exec(text);
  if (m) {
    const bytes = [Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4])];
    return bytes[0]! > 255 || bytes[1]! > 255 || bytes[2]! > 255 || bytes[3]! > 255 ? undefined : { family: 4, bytes };
  }
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const bytes: number[] = [];
  for (const part of parts) {
    // netip rejects leading zeros: "010.0.0.1" is ambiguous (octal in some libcs).
    if (!DECIMAL_OCTET.test(part)) return undefined;
    const value = Number(part);
    if (value > 255) return undefined;
    bytes.push(value);
  }
  return { family: 4, bytes };
}

export function parseIpv6(text: string): IpAddress | undefined {
  if (text.length === 0 || text.length > 45 || text.includes('%')) return undefined;
  const doubleColon = text.indexOf('::');
  if (doubleColon !== text.lastIndexOf('::')) return undefined;
  const head = doubleColon === -1 ? text : text.slice(0, doubleColon);
  const tail = doubleColon === -1 ? '' : text.slice(doubleColon + 2);
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === '' ? [] : tail.split(':');

  const toBytes = (groups: string[], allowTrailingV4: boolean): number[] | undefined => {
    const out: number[] = [];
    for (let i = 0; i < groups.length; i++) {
      const group = groups[i]!;
      if (allowTrailingV4 && i === groups.length - 1 && group.includes('.')) {
        const v4 = parseIpv4(group);
        if (!v4) return undefined;
        out.push(...v4.bytes);
      } else {
        if (!HEX_GROUP.test(group)) return undefined;
        const value = parseInt(group, 16);
        out.push(value >> 8, value & 0xff);
      }
    }
    return out;
  };

  const headBytes = toBytes(headGroups, doubleColon === -1);
  const tailBytes = toBytes(tailGroups, true);
  if (!headBytes || !tailBytes) return undefined;
  if (doubleColon === -1) {
    return headBytes.length === 16 ? { family: 6, bytes: headBytes } : undefined;
  }
  // "::" must stand for at least one group of zeros.
  const missing = 16 - headBytes.length - tailBytes.length;
  if (missing < 2) return undefined;
  return { family: 6, bytes: [...headBytes, ...new Array<number>(missing).fill(0), ...tailBytes] };
}

export function parseIp(text: string): IpAddress | undefined {
  return text.includes(':') ? parseIpv6(text) : parseIpv4(text);
}

export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  if (slash === -1) return undefined;
  const addr = parseIp(text.slice(0, slash));
  const lengthText = text.slice(slash + 1);
  if (!addr || !/^(0|[1-9][0-9]{0,2})$/.test(lengthText)) return undefined;
  const prefix = Number(lengthText);
  if (prefix > addr.bytes.length * 8) return undefined;
  return { addr, prefix };
}

function isIpv4Mapped(bytes: readonly number[]): boolean {
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return false;
  return bytes[10] === 0xff && bytes[11] === 0xff;
}

/** Text form as Go's netip.Addr.String(): RFC 5952 for IPv6, dotted tail only for IPv4-mapped. */
export function formatIp(addr: IpAddress): string {
  const b = addr.bytes;
  if (addr.family === 4) return b.join('.');
  if (isIpv4Mapped(b)) return `::ffff:${b.slice(12).join('.')}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[i]! << 8) | b[i + 1]!);
  // Longest run of two or more zero groups; the first one wins a tie.
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (g: number) => g.toString(16);
  if (bestStart === -1) return groups.map(hex).join(':');
  const left = groups.slice(0, bestStart).map(hex).join(':');
  const right = groups.slice(bestStart + bestLength).map(hex).join(':');
  return `${left}::${right}`;
}

export function formatCidr(cidr: Cidr): string {
  const b = cidr.addr.bytes;
  if (cidr.addr.family === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}/${cidr.prefix}`;
  return `${formatIp(cidr.addr)}/${cidr.prefix}`;
}

/** The prefix with its host bits cleared, as the kernel stores it. */
export function maskCidr(cidr: Cidr): Cidr {
  const b = cidr.addr.bytes;
  // Already masked (the usual case: excludes are written as networks): the same value.
  if (cidr.addr.family === 4 && (cidr.prefix === 32 || ((((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) << cidr.prefix) | 0) === 0)) return cidr;
  const bytes = cidr.addr.bytes.map((byte, index) => {
    const bitsBefore = index * 8;
    if (cidr.prefix >= bitsBefore + 8) return byte;
    if (cidr.prefix <= bitsBefore) return 0;
    return byte & (0xff << (8 - (cidr.prefix - bitsBefore))) & 0xff;
  });
  return { addr: { family: cidr.addr.family, bytes }, prefix: cidr.prefix };
}

export function cidrContains(cidr: Cidr, addr: IpAddress): boolean {
  if (cidr.addr.family !== addr.family) return false;
  const masked = maskCidr(cidr);
  const probe = maskCidr({ addr, prefix: cidr.prefix });
  return masked.addr.bytes.every((byte, i) => byte === probe.addr.bytes[i]);
}

export function isLoopback(addr: IpAddress): boolean {
  if (addr.family === 4) return addr.bytes[0] === 127;
  return addr.bytes.slice(0, 15).every((b) => b === 0) && addr.bytes[15] === 1;
}

export function isLinkLocalUnicast(addr: IpAddress): boolean {
  if (addr.family === 4) return addr.bytes[0] === 169 && addr.bytes[1] === 254;
  return addr.bytes[0] === 0xfe && (addr.bytes[1]! & 0xc0) === 0x80;
}

/** IPv4-mapped IPv6 (::ffff:a.b.c.d) back to IPv4, as Go's Addr.Unmap(). */
export function unmap(addr: IpAddress): IpAddress {
  if (addr.family === 6 && isIpv4Mapped(addr.bytes)) return { family: 4, bytes: addr.bytes.slice(12) };
  return addr;
}

/** Does the prefix contain a loopback address (Istio's HasLoopBackIP)? */
export function cidrIsLoopback(cidr: Cidr): boolean {
  return isLoopback(cidr.addr);
}
