/**
 * Live mesh rules -> the istio-iptables flags that would write them, best
 * effort. Works on the simulator's typed view, so iptables (either backend)
 * and native nftables are read the same way. A value that cannot be told from
 * the rules is "unknown". Pure.
 */
import { formatCidr, isLoopback } from '../net/ip.js';
import { Chain } from '../rules/constants.js';
import type { Match } from '../rules/model.js';
import type { SimChain, SimMatch, SimRule, SimRuleset, SimTableName } from '../trace/model.js';

export const UNKNOWN = 'unknown';

export interface DerivedConfig {
  /** Flag -> value, in istio-iptables' order; UNKNOWN where the rules do not say. */
  readonly flags: ReadonlyArray<readonly [string, string]>;
  /** Environment-only settings the rules imply (owner groups, loopback CIDR). */
  readonly env: Readonly<Record<string, string>>;
  /** Every flag is known (the round trip can be checked). */
  readonly complete: boolean;
}

const chainOf = (rs: SimRuleset | undefined, table: SimTableName, chain: string): SimChain | undefined => rs?.tables.get(table)?.get(chain);
const rulesOf = (rs: SimRuleset | undefined, table: SimTableName, chain: string): readonly SimRule[] => chainOf(rs, table, chain)?.rules ?? [];
const kinds = (rule: SimRule) => rule.matches.map((m) => m.kind).join(',');
const jumpsTo = (rule: SimRule, chain: string) => (rule.target.kind === 'jump' || rule.target.kind === 'goto') && rule.target.chain === chain;
const find = <K extends Match['kind']>(rule: SimRule, kind: K) => rule.matches.find((m) => m.kind === kind) as Extract<SimMatch, { kind: K }> | undefined;
/** `-p tcp --dport N` in iptables; nft leaves the protocol implied by `tcp dport N`. */
const PORT_ONLY = /^(proto,)?dport$/;
const unique = <T>(items: T[]) => [...new Set(items)];

export function deriveConfig(v4: SimRuleset, v6: SimRuleset | undefined, fwmarkTables: ReadonlyMap<number, string>): DerivedConfig {
  const both = [v4, ...(v6 ? [v6] : [])];
  const from = (pick: (rs: SimRuleset) => string | undefined): string => {
    for (const rs of both) {
      const value = pick(rs);
      if (value !== undefined) return value;
    }
    return UNKNOWN;
  };

  const proxyPort = from((rs) => {
    const rule = rulesOf(rs, 'nat', Chain.Redirect).find((r) => r.target.kind === 'redirect');
    return rule?.target.kind === 'redirect' ? String(rule.target.port) : undefined;
  });
  const tproxyRule = (rs: SimRuleset) => rulesOf(rs, 'mangle', Chain.Tproxy).find((r) => r.target.kind === 'tproxy');
  const tproxy = both.some((rs) => tproxyRule(rs) !== undefined);
  const inboundPort = from((rs) => {
    const t = tproxyRule(rs);
    if (t?.target.kind === 'tproxy') return String(t.target.port);
    const rule = rulesOf(rs, 'nat', Chain.InRedirect).find((r) => r.target.kind === 'redirect');
    return rule?.target.kind === 'redirect' ? String(rule.target.port) : undefined;
  });
  const tunnel = from((rs) => {
    const first = rulesOf(rs, 'nat', Chain.Inbound)[0];
    const port = first && first.target.kind === 'return' ? find(first, 'dport') : undefined;
    return port && port.ports.length === 1 && !port.negate ? String(port.ports[0]) : undefined;
  });

  // Inbound: which table captures, whether PREROUTING hooks it, and its port rules.
  const inTable: SimTableName = tproxy ? 'mangle' : 'nat';
  const hooked = rulesOf(v4, inTable, 'PREROUTING').some((r) => jumpsTo(r, Chain.Inbound));
  const inRules = rulesOf(v4, inTable, Chain.Inbound);
  const captureTarget = tproxy ? Chain.Tproxy : Chain.InRedirect;
  let inboundPorts = '';
  let inboundExclude = '';
  if (hooked) {
    const catchAll = inRules.some((r) => jumpsTo(r, captureTarget) && kinds(r) === 'proto');
    const portOf = (r: SimRule) => find(r, 'dport')?.ports[0];
    if (catchAll) {
      inboundPorts = '*';
      const returns = inRules.filter((r) => r.target.kind === 'return' && PORT_ONLY.test(kinds(r)));
      // In the nat table the first RETURN is the tunnel port's, not an exclusion.
      const excluded = (tproxy ? returns : returns.slice(1)).map(portOf).filter((p) => p !== undefined);
      inboundExclude = unique(excluded).join(',');
    } else {
      inboundPorts = unique(inRules.filter((r) => jumpsTo(r, captureTarget) && PORT_ONLY.test(kinds(r))).map(portOf).filter((p) => p !== undefined)).join(',');
    }
  }

  const out4 = rulesOf(v4, 'nat', Chain.Output);
  const outAll = both.flatMap((rs) => rulesOf(rs, 'nat', Chain.Output));
  const ownerIds = (kind: 'uidOwner' | 'gidOwner') =>
    unique(out4.filter((r) => jumpsTo(r, Chain.InRedirect)).map((r) => find(r, kind)).filter((m) => m && !m.negate).map((m) => m!.id));
  let uids = ownerIds('uidOwner');
  let gids = ownerIds('gidOwner');
  const plainReturns = (kind: 'uidOwner' | 'gidOwner') =>
    out4.filter((r) => r.target.kind === 'return' && kinds(r) === kind && !find(r, kind)!.negate).map((r) => find(r, kind)!.id);
  if (uids.length === 0) uids = plainReturns('uidOwner');
  const gidReturns = plainReturns('gidOwner');
  if (gids.length === 0 && uids.length === 0) gids = gidReturns;
  const env: Record<string, string> = {};
  const excludedGroups = gidReturns.filter((g) => !gids.includes(g));
  if (excludedGroups.length > 0) env.ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE = excludedGroups.join(',');
  const onlyGroups = out4.find((r) => r.target.kind === 'return' && r.matches.length > 0 && r.matches.every((m) => m.kind === 'gidOwner' && m.negate));
  if (onlyGroups) env.ISTIO_OUTBOUND_OWNER_GROUPS = onlyGroups.matches.map((m) => (m.kind === 'gidOwner' ? m.id : '')).join(',');

  const redirects = outAll.filter((r) => jumpsTo(r, Chain.Redirect));
  const include = redirects.some((r) => r.matches.length === 0)
    ? '*'
    : unique(redirects.filter((r) => kinds(r) === 'dst').map((r) => formatCidr(find(r, 'dst')!.net.cidr))).join(',');
  const outPorts = unique(out4.filter((r) => jumpsTo(r, Chain.Redirect) && PORT_ONLY.test(kinds(r))).map((r) => find(r, 'dport')!.ports[0]!)).join(',');
  const outExclude = unique(out4.filter((r) => r.target.kind === 'return' && PORT_ONLY.test(kinds(r)) && find(r, 'dport')!.proto === 'tcp').map((r) => find(r, 'dport')!.ports[0]!)).join(',');
  const dstReturns = outAll.filter((r) => r.target.kind === 'return' && kinds(r) === 'dst' && !find(r, 'dst')!.negate).map((r) => find(r, 'dst')!.net.cidr);
  const excludeCidrs = unique(dstReturns.filter((c) => !isLoopback(c.addr)).map(formatCidr)).join(',');
  const loop4 = dstReturns.find((c) => c.addr.family === 4 && isLoopback(c.addr));
  if (loop4 && formatCidr(loop4) !== '127.0.0.1/32') env.ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR = formatCidr(loop4);

  const pre = rulesOf(v4, 'nat', 'PREROUTING');
  const reroute = unique(pre.filter((r) => jumpsTo(r, Chain.Redirect)).map((r) => find(r, 'inIface')?.name).filter((n) => n !== undefined));
  // -c writes `-i X -j RETURN` in PREROUTING and `-o X -j RETURN` in OUTPUT; -k writes the PREROUTING one only.
  const outReturns = new Set(rulesOf(v4, 'nat', 'OUTPUT').filter((r) => r.target.kind === 'return' && kinds(r) === 'outIface').map((r) => find(r, 'outIface')!.name));
  const excludeIfaces = unique(pre.filter((r) => r.target.kind === 'return' && kinds(r) === 'inIface').map((r) => find(r, 'inIface')!.name))
    .filter((name) => !reroute.includes(name) || outReturns.has(name))
    .join(',');
  const rerouteIfaces = reroute.join(',');

  const flags: [string, string][] = [
    ['-p', proxyPort],
    ['-z', inboundPort],
    ['-u', uids.join(',') || UNKNOWN],
    ['-g', gids.join(',') || (uids.length ? uids.join(',') : UNKNOWN)],
    ['-m', tproxy ? 'TPROXY' : 'REDIRECT'],
    ['-i', include],
    ['-x', excludeCidrs],
    ['-b', inboundPorts],
    ['-d', inboundExclude],
    ['-q', outPorts],
    ['-o', outExclude],
    ['-c', excludeIfaces],
    ['-k', rerouteIfaces],
    ['-e', tunnel],
  ];
  if (tproxy) {
    const mark = from((rs) => {
      const t = tproxyRule(rs);
      return t?.target.kind === 'tproxy' ? String(t.target.mark) : undefined;
    });
    flags.push(['-t', mark], ['-r', mark === UNKNOWN ? UNKNOWN : (fwmarkTables.get(Number(mark)) ?? UNKNOWN)]);
  }
  const dnsNat = both.flatMap((rs) => rulesOf(rs, 'nat', Chain.OutputDns));
  if (chainOf(v4, 'nat', Chain.OutputDns) || chainOf(v6, 'nat', Chain.OutputDns)) {
    flags.push(['--redirect-dns', 'true']);
    const servers = (family: 4 | 6) =>
      unique(dnsNat.map((r) => find(r, 'dst')).filter((m) => m && m.net.cidr.addr.family === family).map((m) => m!.net.text.replace(/\/(32|128)$/, '')));
    if (dnsNat.some((r) => r.target.kind === 'redirect' && !find(r, 'dst'))) flags.push(['--capture-all-dns', 'true']);
    else flags.push(['--dns-servers-v4', servers(4).join(',')], ['--dns-servers-v6', servers(6).join(',')]);
  }
  if (chainOf(v4, 'mangle', Chain.Drop)) flags.push(['--drop-invalid', 'true']);
  const v6Mesh = v6 ? [...v6.tables.values()].some((chains) => [...chains.entries()].some(([name, c]) => name.startsWith('ISTIO_') && c.rules.length > 0)) : false;
  flags.push(['--ipv6', v6Mesh ? 'true' : 'false']);
  return { flags, env, complete: flags.every(([, value]) => value !== UNKNOWN) };
}

/** `-p 15001 -i '*' -x '' --redirect-dns ...` as a shell would need it quoted. */
export function derivedArgs(derived: DerivedConfig): string[] {
  const args: string[] = [];
  for (const [flag, value] of derived.flags) {
    if (flag.startsWith('--')) args.push(value === 'true' && flag !== '--ipv6' ? flag : `${flag}=${value}`);
    else args.push(flag, value);
  }
  return args;
}

export function shellQuote(args: readonly string[]): string {
  return args.map((a) => (a === '' || /[^A-Za-z0-9_./:=,@+-]/.test(a) ? `'${a.replace(/'/g, `'\\''`)}'` : a)).join(' ');
}
