/**
 * Parsers for single configuration values. Each returns the typed value or a
 * `Problem` that says what is wrong and what is allowed; the caller adds which
 * flag and which source the value came from. Pure.
 */
import { type Cidr, parseCidr, parseIp, isLoopback } from '../net/ip.js';

export interface Problem {
  readonly problem: string;
  readonly allowed: string;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; problem: Problem };

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const fail = (problem: string, allowed: string): Parsed<never> => ({ ok: false, problem: { problem, allowed } });

/** Istio's config.Split: comma separated, empty items dropped. */
export function splitList(text: string): string[] {
  return text.split(',').filter((item) => item !== '');
}

/** Show a value safely inside a one-line message. */
export function quote(text: string): string {
  return JSON.stringify(text.length > 120 ? `${text.slice(0, 117)}...` : text);
}

function unsafeCharacterProblem(item: string): string | undefined {
  if (/[\u0000-\u001f\u007f]/.test(item)) return 'contains a control character (newline, tab, ...)';
  if (/\s/.test(item)) return 'contains whitespace';
  if (item.includes(';')) return "contains ';'";
  if (item.startsWith('-')) return "starts with '-' and would be read as an option";
  return undefined;
}

const PORTS_ALLOWED = 'a port is a number from 1 to 65535; lists are comma-separated, e.g. 80,8080';

export function parsePort(text: string): Parsed<number> {
  const unsafe = unsafeCharacterProblem(text);
  if (unsafe) return fail(unsafe, PORTS_ALLOWED);
  if (!/^[0-9]{1,5}$/.test(text)) return fail(`${quote(text)} is not a port number`, PORTS_ALLOWED);
  const port = Number(text);
  if (port < 1 || port > 65535) return fail(`port ${port} is outside 1..65535`, PORTS_ALLOWED);
  return ok(port);
}

export function parsePortList(text: string): Parsed<number[]> {
  const ports: number[] = [];
  for (const item of splitList(text)) {
    if (item === '*') return fail("'*' cannot be used here", PORTS_ALLOWED);
    const port = parsePort(item);
    if (!port.ok) return port;
    ports.push(port.value);
  }
  return ok(ports);
}

/** A port list where `*` alone means "all". */
export function parsePortListOrAll(text: string): Parsed<number[] | '*'> {
  if (text === '*') return ok('*');
  const items = splitList(text);
  if (items.includes('*')) return fail("'*' must be the whole value, not one item of a list", `* alone, or ${PORTS_ALLOWED}`);
  return parsePortList(text);
}

const ID_ALLOWED = 'a uid/gid is a decimal number from 0 to 4294967294; lists are comma-separated';

export function parseIdList(text: string): Parsed<string[]> {
  const ids: string[] = [];
  for (const item of splitList(text)) {
    const unsafe = unsafeCharacterProblem(item);
    if (unsafe) return fail(unsafe, ID_ALLOWED);
    if (!/^[0-9]{1,10}$/.test(item) || Number(item) > 4294967294) {
      return fail(`${quote(item)} is not a numeric id`, ID_ALLOWED);
    }
    ids.push(String(Number(item)));
  }
  return ok(ids);
}

const IFACE_ALLOWED =
  'an interface name is 1-15 characters of letters, digits and . _ @ - (a trailing + is an iptables wildcard), not starting with -';

/** What the kernel's dev_valid_name() accepts, narrowed to a charset that is safe in rule text. */
export function parseInterfaceName(text: string): Parsed<string> {
  const unsafe = unsafeCharacterProblem(text);
  if (unsafe) return fail(`interface ${quote(text)} ${unsafe}`, IFACE_ALLOWED);
  if (Buffer.byteLength(text) > 15) {
    return fail(`interface ${quote(text)} is longer than the kernel's 15-byte limit (IFNAMSIZ)`, IFACE_ALLOWED);
  }
  if (text === '.' || text === '..') return fail(`${quote(text)} is not a valid interface name`, IFACE_ALLOWED);
  if (text.includes('/') || text.includes(':')) {
    return fail(`interface ${quote(text)} contains '${text.includes('/') ? '/' : ':'}', which the kernel refuses`, IFACE_ALLOWED);
  }
  if (!/^[A-Za-z0-9._@-]+\+?$/.test(text)) {
    return fail(`interface ${quote(text)} has characters outside the allowed set`, IFACE_ALLOWED);
  }
  return ok(text);
}

export function parseInterfaceList(text: string): Parsed<string[]> {
  const names: string[] = [];
  for (const item of splitList(text)) {
    const name = parseInterfaceName(item);
    if (!name.ok) return name;
    names.push(name.value);
  }
  return ok(names);
}

const CIDR_ALLOWED = 'give IPv4 or IPv6 prefixes with a length, e.g. 10.0.0.0/8,2001:db8::/32';

/** A plain IPv4 prefix, the usual item of a long exclude list (values checked below). */
const IPV4_PREFIX = /^(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\/(0|[1-9][0-9]?)$/;

export function parseCidrItem(text: string): Parsed<Cidr> {
  const cidr = cidrOf(text);
  return cidr ? ok(cidr) : explainCidr(text);
}

/** A valid prefix, or undefined (explainCidr says why). */
function cidrOf(text: string): Cidr | undefined {
  return plainIpv4Prefix(text) ?? (unsafeCharacterProblem(text) ? undefined : parseCidr(text));
}

/**
 * The usual item of a long exclude list, in one match and no intermediate array: this runs
 * 5000 times on a cold start, where every call and allocation is paid in the interpreter.
 */
function plainIpv4Prefix(text: string): Cidr | undefined {
  const v4 = IPV4_PREFIX.exec(text);
  if (v4 === null) return undefined;
  const b0 = +v4[1]!;
  const b1 = +v4[2]!;
  const b2 = +v4[3]!;
  const b3 = +v4[4]!;
  const prefix = +v4[5]!;
  if (b0 > 255 || b1 > 255 || b2 > 255 || b3 > 255 || prefix > 32) return undefined;
  return { addr: { family: 4, bytes: [b0, b1, b2, b3] }, prefix };
}

function explainCidr(text: string): Parsed<never> {
  const unsafe = unsafeCharacterProblem(text);
  if (unsafe) return fail(`${quote(text)} ${unsafe}`, CIDR_ALLOWED);
  if (!text.includes('/')) {
    return parseIp(text)
      ? fail(`${quote(text)} has no prefix length`, `${CIDR_ALLOWED} (a single host is /32 or /128)`)
      : fail(`${quote(text)} is not an IP prefix`, CIDR_ALLOWED);
  }
  const [addressText = '', lengthText = ''] = text.split('/');
  const address = parseIp(addressText);
  if (!address) return fail(`${quote(addressText)} is not a valid IPv4 or IPv6 address`, CIDR_ALLOWED);
  const max = address.family === 4 ? 32 : 128;
  return fail(`prefix length ${quote(lengthText)} is not a number from 0 to ${max}`, CIDR_ALLOWED);
}

export interface CidrList {
  readonly wildcard: boolean;
  readonly cidrs: Cidr[];
}

export function parseCidrList(text: string, allowWildcard: boolean): Parsed<CidrList> {
  let wildcard = false;
  const cidrs: Cidr[] = [];
  // One pass over the text (no split-then-filter): lists of thousands of excludes come through here.
  for (let start = 0; start <= text.length; ) {
    let end = text.indexOf(',', start);
    if (end === -1) end = text.length;
    const item = text.slice(start, end);
    start = end + 1;
    if (item === '') continue;
    const cidr = cidrOf(item);
    if (cidr) {
      cidrs.push(cidr);
      continue;
    }
    if (item !== '*') return explainCidr(item);
    if (!allowWildcard) {
      return fail(
        "'*' is not allowed: excluding every destination would disable outbound capture (Istio: invalid value for OUTBOUND_IP_RANGES_EXCLUDE)",
        CIDR_ALLOWED,
      );
    }
    wildcard = true;
  }
  return ok({ wildcard, cidrs });
}

const GROUP_ALLOWED =
  'a group is a numeric gid or a name of letters, digits and . _ - (at most 32 characters, not starting with -); lists are comma-separated';

export function parseGroupList(text: string): Parsed<string[]> {
  const groups: string[] = [];
  for (const item of splitList(text)) {
    const unsafe = unsafeCharacterProblem(item);
    if (unsafe) return fail(`group ${quote(item)} ${unsafe}`, GROUP_ALLOWED);
    if (!/^[A-Za-z0-9._][A-Za-z0-9._-]{0,31}$/.test(item)) {
      return fail(`group ${quote(item)} is not a valid group name or gid`, GROUP_ALLOWED);
    }
    groups.push(item);
  }
  return ok(groups);
}

/** An unsigned 32-bit number (packet mark, routing table). */
export function parseUint32(text: string, allowed: string): Parsed<number> {
  const unsafe = unsafeCharacterProblem(text);
  if (unsafe) return fail(unsafe, allowed);
  const isHex = /^0x[0-9a-fA-F]{1,8}$/.test(text);
  if (!isHex && !/^[0-9]{1,10}$/.test(text)) return fail(`${quote(text)} is not a number`, allowed);
  const value = isHex ? parseInt(text.slice(2), 16) : Number(text);
  if (value > 0xffffffff) return fail(`${text} does not fit in 32 bits`, allowed);
  return ok(value);
}

/** Go's time.ParseDuration subset used for probe timeouts: 5s, 500ms, 1m30s, 1.5s. */
export function parseGoDuration(text: string): Parsed<number> {
  const allowed = 'a Go duration such as 5s, 500ms or 1m30s';
  if (text === '0') return ok(0);
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const re = /([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (let match = re.exec(text); match; match = re.exec(text)) {
    total += Number(match[1]) * units[match[2]!]!;
    consumed = re.lastIndex;
  }
  if (consumed === 0 || consumed !== text.length) return fail(`${quote(text)} is not a duration`, allowed);
  return ok(total);
}

const DNS_ALLOWED = 'give IP addresses separated by commas, e.g. 10.96.0.10 (an empty value means no servers)';

export function parseDnsServers(text: string, family: 4 | 6): Parsed<string[]> {
  const servers: string[] = [];
  for (const item of splitList(text)) {
    const unsafe = unsafeCharacterProblem(item);
    if (unsafe) return fail(`${quote(item)} ${unsafe}`, DNS_ALLOWED);
    const address = parseIp(item);
    if (!address) return fail(`${quote(item)} is not an IP address`, DNS_ALLOWED);
    if (address.family !== family) {
      return fail(`${quote(item)} is an IPv${address.family} address in the IPv${family} list`, DNS_ALLOWED);
    }
    servers.push(item);
  }
  return ok(servers);
}

/** Istio's check: an IPv4 loopback address with a prefix of 8 to 32. */
export function parseLoopbackCidr(text: string): Parsed<string> {
  const allowed = 'an IPv4 loopback prefix with a length from 8 to 32, e.g. 127.0.0.1/32';
  const cidr = parseCidrItem(text);
  if (!cidr.ok) return fail(cidr.problem.problem, allowed);
  if (cidr.value.addr.family !== 4 || !isLoopback(cidr.value.addr)) {
    return fail(`${quote(text)} is not an IPv4 loopback prefix`, allowed);
  }
  if (cidr.value.prefix < 8) return fail(`prefix length /${cidr.value.prefix} is shorter than /8`, allowed);
  return ok(text);
}
