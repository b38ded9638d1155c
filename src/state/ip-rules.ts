/** What `ip rule`, `ip route` and `ip addr` print, read for the capture's policy routing. Pure. */

export interface FwmarkRule {
  readonly mark: number;
  readonly mask?: number;
  readonly table: string;
  /** The rule without its priority, e.g. `from all fwmark 0x539 lookup 133`. */
  readonly spec: string;
}

/** `ip rule show` lines that send a fwmark to a table. */
export function parseFwmarkRules(text: string): FwmarkRule[] {
  const rules: FwmarkRule[] = [];
  for (const line of text.split('\n')) {
    const match = /^\d+:\s+from all fwmark (0x[0-9a-f]+|\d+)(?:\/(0x[0-9a-f]+))? lookup (\S+)/.exec(line.trim());
    if (!match) continue;
    rules.push({
      mark: Number(match[1]),
      ...(match[2] ? { mask: Number(match[2]) } : {}),
      table: match[3]!,
      spec: line.trim().replace(/^\d+:\s+/, ''),
    });
  }
  return rules;
}

/** `ip -6 -o addr show dev lo` lists `::6/128` (the proxy's IPv6 passthrough source). */
export function hasPassthroughV6(loAddresses: string): boolean {
  return /\sinet6 ::6\/128\s/.test(loAddresses);
}

/** `ip route show table T` holds the `local default dev lo` route TPROXY delivery needs. */
export function isLocalDefaultRoute(routes: string): boolean {
  return /^local (default|0\.0\.0\.0\/0|::\/0) dev lo/m.test(routes);
}
