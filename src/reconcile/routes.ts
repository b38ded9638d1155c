/**
 * Addresses and policy routing the capture needs beside the rules: `::6` on lo
 * (the proxy binds there for IPv6 passthrough) and, in TPROXY mode,
 * `ip rule fwmark MARK lookup TABLE` + `local default dev lo` in that table.
 * Every step checks first, so a re-run never fails with "File exists".
 */
import { PACKAGE_OF } from '../backend/binaries.js';
import type { System } from '../backend/system.js';
import { toolFailure } from '../backend/tool-errors.js';
import { ExitCode, MeshcapError } from '../errors.js';
import type { Logger } from '../log.js';
import { hasPassthroughV6, isLocalDefaultRoute, parseFwmarkRules } from '../state/ip-rules.js';

export interface RouteOptions {
  readonly sys: System;
  readonly log: Logger;
}

function ipBinary(sys: System, why: string): string {
  const ip = sys.which('ip');
  if (!ip) {
    throw new MeshcapError({
      exitCode: ExitCode.Unsupported,
      what: `${why}: the 'ip' binary was not found on PATH`,
      why: 'the image has no iproute2',
      fix: `install it (Debian/Ubuntu: apt-get install ${PACKAGE_OF.ip}; Alpine: apk add iproute2)`,
    });
  }
  return ip;
}

async function ip(opts: RouteOptions, binary: string, args: string[], action: string) {
  const result = await opts.sys.run(binary, args);
  if (result.code !== 0) throw toolFailure(result, { action });
  return result.stdout;
}

export async function ensureIpv6Passthrough(opts: RouteOptions): Promise<boolean> {
  const binary = ipBinary(opts.sys, 'adding ::6 to lo for IPv6');
  const addresses = await ip(opts, binary, ['-6', '-o', 'addr', 'show', 'dev', 'lo'], 'listing the addresses of lo');
  if (hasPassthroughV6(addresses)) return false;
  await ip(opts, binary, ['-6', 'addr', 'add', '::6/128', 'dev', 'lo'], 'adding ::6/128 to lo');
  return true;
}

export interface TproxyRouting {
  readonly mark: number;
  readonly table: number;
  readonly ipv6: boolean;
}

export async function ensureTproxyRouting(opts: RouteOptions, routing: TproxyRouting): Promise<string[]> {
  const binary = ipBinary(opts.sys, 'setting up TPROXY policy routing');
  const changes: string[] = [];
  for (const family of routing.ipv6 ? (['-4', '-6'] as const) : (['-4'] as const)) {
    const rules = parseFwmarkRules(await ip(opts, binary, [family, 'rule', 'show'], 'listing policy routing rules'));
    if (!rules.some((r) => r.mark === routing.mark && r.table === String(routing.table) && (r.mask === undefined || r.mask === 0xffffffff))) {
      await ip(opts, binary, [family, 'rule', 'add', 'fwmark', String(routing.mark), 'lookup', String(routing.table)],
        `adding 'ip ${family} rule fwmark ${routing.mark} lookup ${routing.table}'`);
      changes.push(`ip ${family} rule fwmark ${routing.mark} lookup ${routing.table}`);
    }
    // `replace` is idempotent: creates the route or leaves the identical one.
    await ip(opts, binary, [family, 'route', 'replace', 'local', family === '-4' ? '0.0.0.0/0' : '::/0', 'dev', 'lo', 'table', String(routing.table)],
      `adding the local default route to table ${routing.table}`);
  }
  return changes;
}

/**
 * Removes TPROXY policy routing of any config: every fwmark rule whose table
 * holds a `local default dev lo` route, and that route.
 */
export async function cleanTproxyRouting(opts: RouteOptions): Promise<string[]> {
  const binary = opts.sys.which('ip');
  if (!binary) return [];
  const removed: string[] = [];
  for (const family of ['-4', '-6'] as const) {
    const show = await opts.sys.run(binary, [family, 'rule', 'show']);
    if (show.code !== 0) continue;
    for (const rule of parseFwmarkRules(show.stdout)) {
      const routes = await opts.sys.run(binary, [family, 'route', 'show', 'table', rule.table]);
      if (!isLocalDefaultRoute(routes.stdout)) continue;
      const markText = rule.mask === undefined ? String(rule.mark) : `${rule.mark}/${rule.mask}`;
      await ip(opts, binary, [family, 'rule', 'del', 'fwmark', markText, 'lookup', rule.table], `deleting 'ip rule ${rule.spec}'`);
      await opts.sys.run(binary, [family, 'route', 'flush', 'table', rule.table]);
      removed.push(`ip ${family} rule ${rule.spec} (and table ${rule.table})`);
    }
  }
  return removed;
}
