/**
 * Walks one packet through a ruleset the way netfilter does, and records every
 * chain and rule it passes. Pure.
 *
 * Hook order for a locally generated packet: raw, mangle, nat (first packet of
 * a connection only), filter OUTPUT. A packet routed to a local address (out
 * `lo`, or REDIRECTed) comes back in through lo: raw and mangle PREROUTING run
 * again, nat PREROUTING does not (the connection's NAT was decided in OUTPUT),
 * then mangle and filter INPUT. An arriving packet: raw, mangle, nat
 * PREROUTING, then mangle and filter INPUT.
 *
 * Within a table: the first matching terminal target ends the table (ACCEPT,
 * REDIRECT, TPROXY) or the packet (DROP); RETURN from a user chain resumes the
 * caller, from a built-in chain applies its policy; MARK, CONNMARK and CT
 * change state and continue.
 */
import { type IpAddress, cidrContains, formatIp, parseIp } from '../net/ip.js';
import type { Match } from '../rules/model.js';
import type { Packet, SimMatch, SimRule, SimRuleset, SimTableName, SimTarget } from './model.js';

export type Step =
  | { readonly kind: 'hook'; readonly hook: string; readonly note: string }
  | { readonly kind: 'chain'; readonly table: SimTableName; readonly chain: string; readonly depth: number; readonly note?: string }
  | {
      readonly kind: 'rule';
      readonly table: SimTableName;
      readonly chain: string;
      readonly depth: number;
      /** 1-based position in the chain, as `iptables -L --line-numbers` counts. */
      readonly index: number;
      readonly text: string;
      readonly matched: boolean;
      /** Why it did not match (the first failing match), or what it did. */
      readonly reason: string;
      readonly why?: string;
    }
  | { readonly kind: 'note'; readonly depth: number; readonly text: string };

export type Verdict =
  | { readonly kind: 'redirect'; readonly port: number; readonly address: string; readonly summary: string }
  | { readonly kind: 'tproxy'; readonly port: number; readonly mark: number; readonly summary: string }
  | { readonly kind: 'pass'; readonly summary: string }
  | { readonly kind: 'drop'; readonly summary: string }
  | { readonly kind: 'unknown'; readonly summary: string };

export interface TraceResult {
  readonly source: string;
  readonly steps: readonly Step[];
  readonly verdict: Verdict;
  readonly final: { readonly mark: number; readonly ctmark: number; readonly zone?: number; readonly dst: string; readonly dport: number };
  readonly warnings: readonly string[];
}

/** Names for well-known capture ports in verdicts. */
export const DEFAULT_PORT_LABELS: ReadonlyMap<number, string> = new Map([
  [15001, 'the outbound proxy listener'],
  [15006, 'the inbound capture listener'],
  [15053, 'the DNS agent'],
]);

type Outcome =
  | { readonly kind: 'continue' }
  | { readonly kind: 'return' }
  | { readonly kind: 'accept' }
  | { readonly kind: 'drop'; readonly where: string }
  | { readonly kind: 'redirect'; readonly port: number }
  | { readonly kind: 'tproxy'; readonly port: number; readonly mark: number }
  | { readonly kind: 'unknown'; readonly text: string };

interface State {
  mark: number;
  ctmark: number;
  zone?: number;
  dst: IpAddress;
  dport: number;
  inIface?: string;
  outIface?: string;
}

/** A pass of one hook through some tables. */
interface HookPass {
  readonly hook: 'PREROUTING' | 'INPUT' | 'OUTPUT';
  readonly tables: readonly SimTableName[];
  readonly note: string;
}

const MAX_DEPTH = 64;
const hex = (n: number) => `0x${n.toString(16)}`;

export function simulate(ruleset: SimRuleset, packet: Packet, labels: ReadonlyMap<number, string> = DEFAULT_PORT_LABELS): TraceResult {
  const steps: Step[] = [];
  const warnings = new Set<string>();
  const state: State = {
    mark: packet.mark,
    ctmark: packet.ctmark,
    dst: packet.dst,
    dport: packet.dport,
    ...(packet.inIface !== undefined ? { inIface: packet.inIface } : {}),
    ...(packet.outIface !== undefined ? { outIface: packet.outIface } : {}),
  };
  const isNew = packet.state === 'new';
  let uid = packet.uid;
  let gid = packet.gid;
  let redirect: { port: number; address: string } | undefined;
  let tproxy: { port: number; mark: number } | undefined;
  let accepted = '';

  const label = (port: number) => labels.get(port) ?? `port ${port}`;

  const evalMatch = (match: SimMatch, table: SimTableName): { ok: boolean; why: string } => {
    if (match.kind === 'unsupported') {
      warnings.add(`'${match.text}' is not modelled by the simulator; rules using it are treated as not matching`);
      return { ok: false, why: `'${match.text}' is not modelled (assumed no match)` };
    }
    return evalTyped(match, table);
  };

  const evalTyped = (match: Match, table: SimTableName): { ok: boolean; why: string } => {
    const negated = (ok: boolean, negate: boolean | undefined, describe: string) =>
      ({ ok: negate ? !ok : ok, why: describe });
    switch (match.kind) {
      case 'inIface': {
        if (state.inIface === undefined) return { ok: false, why: `no input interface in ${table} OUTPUT` };
        return { ok: ifaceMatches(match.name, state.inIface), why: `in iface ${state.inIface}${ifaceMatches(match.name, state.inIface) ? ' is' : ' is not'} ${match.name}` };
      }
      case 'outIface': {
        if (state.outIface === undefined) return { ok: false, why: 'no output interface before routing' };
        return { ok: ifaceMatches(match.name, state.outIface), why: `out iface ${state.outIface}${ifaceMatches(match.name, state.outIface) ? ' is' : ' is not'} ${match.name}` };
      }
      case 'src': {
        const inside = cidrContains(match.net.cidr, packet.src);
        return negated(inside, match.negate, `src ${formatIp(packet.src)} is ${inside ? '' : 'not '}in ${match.net.text}`);
      }
      case 'dst': {
        const inside = cidrContains(match.net.cidr, state.dst);
        return negated(inside, match.negate, `dst ${formatIp(state.dst)} is ${inside ? '' : 'not '}in ${match.net.text}`);
      }
      case 'proto':
        return { ok: packet.proto === match.proto, why: `protocol is ${packet.proto}` };
      case 'dport': {
        if (packet.proto !== match.proto) return { ok: false, why: `protocol is ${packet.proto}, not ${match.proto}` };
        const inside = match.ports.includes(state.dport);
        return negated(inside, match.negate, `dport ${state.dport} is ${inside ? '' : 'not '}${match.ports.length > 1 ? `in ${match.ports.join(',')}` : match.ports[0]}`);
      }
      case 'sport': {
        if (packet.proto !== match.proto) return { ok: false, why: `protocol is ${packet.proto}, not ${match.proto}` };
        return { ok: packet.sport === match.port, why: `sport ${packet.sport} is ${packet.sport === match.port ? '' : 'not '}${match.port}` };
      }
      case 'uidOwner':
      case 'gidOwner': {
        const which = match.kind === 'uidOwner' ? 'uid' : 'gid';
        const id = which === 'uid' ? uid : gid;
        // xt_owner: without a local socket a plain owner match fails and a negated one matches.
        if (id === undefined) return { ok: Boolean(match.negate), why: `no local socket, so no ${which}` };
        const inside = idMatches(match.id, id);
        return negated(inside, match.negate, `${which} ${id} is ${inside ? '' : 'not '}${match.id}`);
      }
      case 'ctstate': {
        const current = isNew ? 'NEW' : 'ESTABLISHED';
        const ok = (match.states as readonly string[]).includes(current);
        return { ok, why: `connection state is ${current}` };
      }
      case 'mark':
        return negated(state.mark === match.mark, match.negate, `mark is ${hex(state.mark)}`);
      case 'connmark':
        return { ok: state.ctmark === match.mark, why: `connection mark is ${hex(state.ctmark)}` };
    }
  };

  const runChain = (table: SimTableName, chainName: string, depth: number): Outcome => {
    const chain = ruleset.tables.get(table)?.get(chainName);
    if (!chain) {
      steps.push({ kind: 'note', depth, text: `${table} ${chainName} does not exist` });
      return { kind: 'unknown', text: `jump to missing chain ${table} ${chainName}` };
    }
    if (depth > MAX_DEPTH) return { kind: 'unknown', text: `more than ${MAX_DEPTH} nested jumps (a loop?)` };
    for (const [i, rule] of chain.rules.entries()) {
      const result = evalRule(rule, table);
      const base = { kind: 'rule' as const, table, chain: chainName, depth, index: i + 1, text: rule.text, ...(rule.why ? { why: rule.why } : {}) };
      if (!result.ok) {
        steps.push({ ...base, matched: false, reason: result.why });
        continue;
      }
      const target = rule.target;
      steps.push({ ...base, matched: true, reason: describeAction(target) });
      const outcome = applyTarget(target, table, depth);
      if (outcome.kind === 'continue') continue;
      return outcome;
    }
    return { kind: 'return' };
  };

  const evalRule = (rule: SimRule, table: SimTableName): { ok: boolean; why: string } => {
    const reasons: string[] = [];
    for (const match of rule.matches) {
      const result = evalMatch(match, table);
      if (!result.ok) return { ok: false, why: result.why };
      reasons.push(result.why);
    }
    return { ok: true, why: reasons.join(', ') };
  };

  const applyTarget = (target: SimTarget, table: SimTableName, depth: number): Outcome => {
    switch (target.kind) {
      case 'return':
        return { kind: 'return' };
      case 'accept':
        return { kind: 'accept' };
      case 'drop':
        return { kind: 'drop', where: table };
      case 'jump':
      case 'goto': {
        steps.push({ kind: 'chain', table, chain: target.chain, depth: depth + 1 });
        const outcome = runChain(table, target.chain, depth + 1);
        if (outcome.kind === 'return') {
          if (target.kind === 'goto') return { kind: 'return' };
          steps.push({ kind: 'note', depth: depth + 1, text: `back from ${target.chain}` });
          return { kind: 'continue' };
        }
        return outcome;
      }
      case 'redirect':
        if (table !== 'nat') return { kind: 'unknown', text: `REDIRECT outside the nat table (${table})` };
        return { kind: 'redirect', port: target.port };
      case 'tproxy':
        if (table !== 'mangle') return { kind: 'unknown', text: `TPROXY outside the mangle table (${table})` };
        state.mark = target.mark;
        return { kind: 'tproxy', port: target.port, mark: target.mark };
      case 'setMark':
        state.mark = target.mark;
        return { kind: 'continue' };
      case 'saveMark':
        state.ctmark = state.mark;
        return { kind: 'continue' };
      case 'restoreMark':
        state.mark = state.ctmark;
        return { kind: 'continue' };
      case 'ctZone':
        state.zone = target.zone;
        return { kind: 'continue' };
      case 'unsupported':
        if (target.continues) {
          warnings.add(`target '${target.text}' is not modelled; it does not decide the packet's fate, so the walk goes on`);
          return { kind: 'continue' };
        }
        return { kind: 'unknown', text: `target '${target.text}' is not modelled` };
    }
  };

  /** One built-in chain of one table; returns undefined when the packet goes on to the next table. */
  const runBuiltin = (table: SimTableName, hook: string): Outcome | undefined => {
    const chain = ruleset.tables.get(table)?.get(hook);
    if (!chain || chain.rules.length === 0) return undefined;
    steps.push({ kind: 'chain', table, chain: hook, depth: 0 });
    const outcome = runChain(table, hook, 0);
    if (outcome.kind === 'return' || outcome.kind === 'continue') {
      const policy = chain.policy ?? 'ACCEPT';
      steps.push({ kind: 'note', depth: 0, text: `end of ${table} ${hook}: policy ${policy}` });
      return policy === 'DROP' ? { kind: 'drop', where: `${table} ${hook} policy` } : undefined;
    }
    return outcome;
  };

  /** Runs one hook; returns a final verdict when the packet stops here. */
  const runHook = (pass: HookPass): Verdict | undefined => {
    steps.push({ kind: 'hook', hook: pass.hook, note: pass.note });
    if (pass.tables.every((table) => !ruleset.tables.get(table)?.get(pass.hook)?.rules.length)) {
      steps.push({ kind: 'note', depth: 0, text: `no rules in ${pass.tables.map((t) => `${t} ${pass.hook}`).join(', ')}` });
    }
    for (const table of pass.tables) {
      const outcome = runBuiltin(table, pass.hook);
      if (!outcome || outcome.kind === 'accept') {
        if (outcome) accepted = `${table} ${pass.hook}`;
        continue;
      }
      switch (outcome.kind) {
        case 'drop':
          return { kind: 'drop', summary: `dropped in ${outcome.where}` };
        case 'unknown':
          return { kind: 'unknown', summary: `cannot tell: ${outcome.text}` };
        case 'redirect': {
          const address = redirectAddress(pass.hook);
          redirect = { port: outcome.port, address };
          state.dst = parseIp(address) ?? state.dst;
          state.dport = outcome.port;
          if (pass.hook === 'OUTPUT') state.outIface = 'lo';
          continue;
        }
        case 'tproxy':
          tproxy = { port: outcome.port, mark: outcome.mark };
          continue;
        case 'return':
        case 'continue':
          continue;
      }
    }
    return undefined;
  };

  const redirectAddress = (hook: string): string => {
    // REDIRECT sends locally generated packets to loopback, arriving ones to the address of the input interface.
    if (hook === 'OUTPUT') return packet.family === 'ipv4' ? '127.0.0.1' : '::1';
    return formatIp(packet.dst);
  };

  const passes: HookPass[] = [];
  if (packet.direction === 'outbound') {
    passes.push({
      hook: 'OUTPUT',
      tables: isNew ? ['raw', 'mangle', 'nat', 'filter'] : ['raw', 'mangle', 'filter'],
      note: `locally generated packet${isNew ? '' : ' of an established connection (nat is not consulted)'}`,
    });
  } else {
    passes.push({
      hook: 'PREROUTING',
      tables: isNew ? ['raw', 'mangle', 'nat'] : ['raw', 'mangle'],
      note: `packet arriving on ${packet.inIface ?? '?'}${isNew ? '' : ' of an established connection (nat is not consulted)'}`,
    });
    passes.push({ hook: 'INPUT', tables: ['mangle', 'filter'], note: 'delivered to a local socket' });
  }

  let verdict: Verdict | undefined;
  for (const pass of passes) {
    verdict = runHook(pass);
    if (verdict) break;
  }
  if (!verdict && packet.direction === 'outbound' && state.outIface === 'lo') {
    // A packet to a local address loops back: PREROUTING again on lo, where TPROXY mode's mangle rules act.
    state.inIface = 'lo';
    delete state.outIface;
    uid = undefined;
    gid = undefined;
    for (const pass of [
      { hook: 'PREROUTING', tables: ['raw', 'mangle'], note: 'the packet loops back through lo (nat PREROUTING is not consulted: NAT was decided in OUTPUT)' },
      { hook: 'INPUT', tables: ['mangle', 'filter'], note: 'delivered to a local socket' },
    ] as const) {
      verdict = runHook(pass);
      if (verdict) break;
    }
  }
  verdict ??= finalVerdict();

  return {
    source: ruleset.source,
    steps,
    verdict,
    final: { mark: state.mark, ctmark: state.ctmark, ...(state.zone !== undefined ? { zone: state.zone } : {}), dst: formatIp(state.dst), dport: state.dport },
    warnings: [...warnings],
  };

  function finalVerdict(): Verdict {
    if (tproxy) {
      return {
        kind: 'tproxy',
        port: tproxy.port,
        mark: tproxy.mark,
        summary: `TPROXY to port ${tproxy.port} (${label(tproxy.port)}), mark ${hex(tproxy.mark)}: the proxy receives the connection with its original destination ${formatIp(packet.dst)}:${packet.dport}`,
      };
    }
    if (redirect) {
      return {
        kind: 'redirect',
        port: redirect.port,
        address: redirect.address,
        summary: `redirected to ${label(redirect.port)} at ${redirect.address.includes(':') ? `[${redirect.address}]` : redirect.address}:${redirect.port} (original destination ${formatIp(packet.dst)}:${packet.dport})`,
      };
    }
    const where = packet.direction === 'inbound' || packet.outIface === 'lo' ? 'delivered to' : `routed out of ${packet.outIface ?? 'the default route'} to`;
    const marked = state.mark !== 0 ? `, with mark ${hex(state.mark)}` : '';
    const by = accepted ? ` (accepted in ${accepted})` : '';
    return { kind: 'pass', summary: `not captured: ${where} ${formatIp(packet.dst)}:${packet.dport} as addressed${marked}${by}` };
  }
}

export function describeAction(target: SimTarget): string {
  switch (target.kind) {
    case 'return':
      return 'RETURN';
    case 'accept':
      return 'ACCEPT';
    case 'drop':
      return 'DROP';
    case 'jump':
      return `jump to ${target.chain}`;
    case 'goto':
      return `go to ${target.chain}`;
    case 'redirect':
      return `REDIRECT to port ${target.port}`;
    case 'tproxy':
      return `TPROXY to port ${target.port}, mark ${hex(target.mark)}`;
    case 'setMark':
      return `set mark ${hex(target.mark)}`;
    case 'saveMark':
      return 'save mark to the connection';
    case 'restoreMark':
      return 'restore mark from the connection';
    case 'ctZone':
      return `conntrack zone ${target.zone}`;
    case 'unsupported':
      return `'${target.text}' (not modelled)`;
  }
}

/** iptables interface names: a trailing `+` matches any name with that prefix. */
export function ifaceMatches(pattern: string, name: string): boolean {
  return pattern.endsWith('+') ? name.startsWith(pattern.slice(0, -1)) : pattern === name;
}

/** `1337` or an xt_owner range `1000-2000`. */
export function idMatches(spec: string, id: number): boolean {
  const range = /^(\d+)-(\d+)$/.exec(spec);
  if (range) return id >= Number(range[1]) && id <= Number(range[2]);
  return /^\d+$/.test(spec) && Number(spec) === id;
}
