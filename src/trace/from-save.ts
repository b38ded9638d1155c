/**
 * iptables-save text (either backend prints the same form) -> the simulator's
 * tables. Covers everything meshcap and every Istio version write (addresses,
 * interfaces, tcp/udp ports, multiport, owner, conntrack, mark, connmark;
 * RETURN, ACCEPT, DROP, jumps, gotos, REDIRECT, TPROXY, MARK, CONNMARK, CT)
 * and marks anything else as not modelled rather than guessing. Pure.
 */
import { type Cidr, formatCidr, parseCidr } from '../net/ip.js';
import type { Family, Net, Protocol } from '../rules/model.js';
import type { SimChain, SimMatch, SimRule, SimRuleset, SimTableName, SimTarget } from './model.js';

const TABLES: readonly SimTableName[] = ['raw', 'mangle', 'nat', 'filter'];
const FULL_MASK = 0xffffffff;
/** Targets that change nothing about where the packet goes. */
const NON_TERMINATING = new Set(['LOG', 'NFLOG', 'TRACE', 'CT', 'NOTRACK', 'TOS', 'DSCP', 'TCPMSS', 'CLASSIFY', 'CONNMARK', 'MARK', 'AUDIT', 'ULOG']);

/** Splits a save-form spec into words, keeping "quoted strings" (comments) whole. */
export function tokenizeSpec(spec: string): string[] {
  const tokens: string[] = [];
  let i = 0;
  while (i < spec.length) {
    if (spec[i] === ' ') {
      i++;
      continue;
    }
    if (spec[i] === '"') {
      let j = i + 1;
      let text = '';
      while (j < spec.length && spec[j] !== '"') {
        if (spec[j] === '\\' && j + 1 < spec.length) j++;
        text += spec[j];
        j++;
      }
      tokens.push(text);
      i = j + 1;
      continue;
    }
    let j = i;
    while (j < spec.length && spec[j] !== ' ') j++;
    tokens.push(spec.slice(i, j));
    i = j;
  }
  return tokens;
}

function toNet(text: string): Net | undefined {
  const withPrefix = text.includes('/') ? text : `${text}/${text.includes(':') ? 128 : 32}`;
  const cidr: Cidr | undefined = parseCidr(withPrefix);
  if (!cidr) {
    // iptables-save of very old versions printed dotted masks; not produced by anything current.
    return undefined;
  }
  return { cidr, text: formatCidr(cidr) };
}

/** A mark `0x539` or `0x539/0xffffffff`; undefined when a partial mask makes it a different match. */
function parseMark(text: string): number | undefined {
  const [value, mask] = text.split('/');
  const number = Number(value);
  if (!Number.isInteger(number) || number < 0 || number > FULL_MASK) return undefined;
  if (mask !== undefined && Number(mask) !== FULL_MASK) return undefined;
  return number;
}

function parsePorts(text: string): number[] | undefined {
  const ports: number[] = [];
  for (const part of text.split(',')) {
    const range = /^(\d+):(\d+)$/.exec(part);
    if (range) {
      const [from, to] = [Number(range[1]), Number(range[2])];
      // Ranges are rare in the mesh's rules; expanding small ones keeps one match kind.
      if (to < from || to - from > 1024) return undefined;
      for (let p = from; p <= to; p++) ports.push(p);
      continue;
    }
    if (!/^\d+$/.test(part) || Number(part) > 65535) return undefined;
    ports.push(Number(part));
  }
  return ports;
}

export function parseSaveSpec(spec: string): { matches: SimMatch[]; target: SimTarget } {
  const tokens = tokenizeSpec(spec);
  const matches: SimMatch[] = [];
  let target: SimTarget = { kind: 'unsupported', text: 'no target', continues: true };
  let module = '';
  let proto: Protocol | undefined;
  let negate = false;
  const unsupported = (text: string) => matches.push({ kind: 'unsupported', text });

  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (token === '!') {
      negate = true;
      continue;
    }
    const value = tokens[i + 1];
    const shown = `${negate ? '! ' : ''}${token}${value !== undefined ? ` ${value}` : ''}`;
    const takeValue = () => {
      i++;
      return value ?? '';
    };
    switch (token) {
      case '-s':
      case '--source':
      case '-d':
      case '--destination': {
        const net = toNet(takeValue());
        if (!net) unsupported(shown);
        else matches.push({ kind: token === '-s' || token === '--source' ? 'src' : 'dst', net, negate });
        break;
      }
      case '-i':
      case '--in-interface':
      case '-o':
      case '--out-interface': {
        const name = takeValue();
        if (negate) unsupported(shown);
        else matches.push({ kind: token.startsWith('-i') || token === '--in-interface' ? 'inIface' : 'outIface', name });
        break;
      }
      case '-p':
      case '--protocol': {
        const name = takeValue();
        if (!negate && (name === 'tcp' || name === 'udp')) {
          proto = name;
          matches.push({ kind: 'proto', proto: name });
        } else unsupported(shown);
        break;
      }
      case '-m':
      case '--match':
        module = takeValue();
        break;
      case '--dport':
      case '--destination-port':
      case '--sport':
      case '--source-port':
      case '--dports':
      case '--destination-ports':
      case '--sports':
      case '--source-ports': {
        const ports = parsePorts(takeValue());
        const p: Protocol | undefined = module === 'tcp' || module === 'udp' ? module : proto;
        const isSource = token.startsWith('--s');
        if (!ports || !p) unsupported(shown);
        else if (isSource) {
          if (ports.length === 1 && !negate) matches.push({ kind: 'sport', proto: p, port: ports[0]! });
          else unsupported(shown);
        } else matches.push({ kind: 'dport', proto: p, ports, negate });
        break;
      }
      case '--uid-owner':
      case '--gid-owner':
        matches.push({ kind: token === '--uid-owner' ? 'uidOwner' : 'gidOwner', id: takeValue(), negate });
        break;
      case '--ctstate':
      case '--state': {
        const states = takeValue().split(',');
        if (negate) unsupported(shown);
        else matches.push({ kind: 'ctstate', states: states as ('INVALID' | 'RELATED' | 'ESTABLISHED')[] });
        break;
      }
      case '--mark': {
        const mark = parseMark(takeValue());
        if (mark === undefined) unsupported(shown);
        else if (module === 'connmark' && !negate) matches.push({ kind: 'connmark', mark });
        else if (module === 'mark') matches.push({ kind: 'mark', mark, negate });
        else unsupported(shown);
        break;
      }
      case '--comment':
        takeValue();
        break;
      case '-j':
      case '--jump':
      case '-g':
      case '--goto': {
        const rest = tokens.slice(i + 2);
        target = token === '-g' || token === '--goto' ? { kind: 'goto', chain: value ?? '' } : parseTarget(value ?? '', rest);
        i = tokens.length;
        break;
      }
      default: {
        // An option of a module we do not model: keep it, with its arguments, as one unsupported match.
        const args: string[] = [];
        while (i + 1 < tokens.length && !tokens[i + 1]!.startsWith('-') && tokens[i + 1] !== '!') args.push(tokens[++i]!);
        unsupported(`${negate ? '! ' : ''}${module ? `-m ${module} ` : ''}${[token, ...args].join(' ')}`);
      }
    }
    negate = false;
  }
  return { matches, target };
}

function option(rest: readonly string[], name: string): string | undefined {
  const index = rest.indexOf(name);
  return index === -1 ? undefined : rest[index + 1];
}

function parseTarget(name: string, rest: readonly string[]): SimTarget {
  const text = [name, ...rest].join(' ');
  const unsupported: SimTarget = { kind: 'unsupported', text, continues: NON_TERMINATING.has(name) };
  switch (name) {
    case 'RETURN':
      return { kind: 'return' };
    case 'ACCEPT':
      return { kind: 'accept' };
    case 'DROP':
      return { kind: 'drop' };
    case 'REDIRECT': {
      const ports = option(rest, '--to-ports') ?? option(rest, '--to-port');
      return ports && /^\d+$/.test(ports) ? { kind: 'redirect', port: Number(ports) } : unsupported;
    }
    case 'TPROXY': {
      const port = option(rest, '--on-port');
      const mark = parseMark(option(rest, '--tproxy-mark') ?? '');
      return port && /^\d+$/.test(port) && mark !== undefined ? { kind: 'tproxy', port: Number(port), mark } : unsupported;
    }
    case 'MARK': {
      const mark = parseMark(option(rest, '--set-xmark') ?? option(rest, '--set-mark') ?? '');
      return mark !== undefined ? { kind: 'setMark', mark } : unsupported;
    }
    case 'CONNMARK': {
      const masks = [option(rest, '--nfmask'), option(rest, '--ctmask')].filter((m) => m !== undefined);
      if (masks.some((m) => Number(m) !== FULL_MASK)) return unsupported;
      if (rest[0] === '--save-mark') return { kind: 'saveMark' };
      if (rest[0] === '--restore-mark') return { kind: 'restoreMark' };
      return unsupported;
    }
    case 'CT': {
      const zone = option(rest, '--zone');
      return zone && /^\d+$/.test(zone) && rest.length === 2 ? { kind: 'ctZone', zone: Number(zone) } : unsupported;
    }
    default:
      // An upper-case name with options is an extension target; anything else is a user chain.
      if (rest.length > 0 || /^[A-Z]+$/.test(name) && ['DNAT', 'SNAT', 'MASQUERADE', 'REJECT', 'NETMAP', 'QUEUE', 'NFQUEUE'].includes(name) || NON_TERMINATING.has(name)) return unsupported;
      return { kind: 'jump', chain: name };
  }
}

/** Built-in chain policies from `:CHAIN POLICY [n:m]` lines, per table. */
function policies(text: string): Map<string, Map<string, 'ACCEPT' | 'DROP'>> {
  const out = new Map<string, Map<string, 'ACCEPT' | 'DROP'>>();
  let table = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1).trim();
    const match = /^:(\S+) (ACCEPT|DROP) /.exec(line);
    if (match) (out.get(table) ?? out.set(table, new Map()).get(table)!).set(match[1]!, match[2] as 'ACCEPT' | 'DROP');
  }
  return out;
}

export function simRulesetFromSave(text: string, family: Family, source: string): SimRuleset {
  const tables = new Map<SimTableName, Map<string, SimChain>>();
  const policy = policies(text);
  let table: SimTableName | undefined;
  const chains = new Map<string, SimRule[]>();
  const flush = () => {
    if (!table) return;
    const built = new Map<string, SimChain>();
    for (const [name, rules] of chains) {
      const p = policy.get(table)?.get(name);
      built.set(name, p ? { rules, policy: p } : { rules });
    }
    tables.set(table, built);
    chains.clear();
  };
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (line.startsWith('*')) {
      flush();
      const name = line.slice(1).trim();
      table = (TABLES as readonly string[]).includes(name) ? (name as SimTableName) : undefined;
    } else if (!table) {
      continue;
    } else if (line.startsWith(':')) {
      chains.set(line.slice(1).split(' ')[0]!, []);
    } else if (line.startsWith('-A ')) {
      const rest = line.slice(3);
      const space = rest.indexOf(' ');
      const chain = space === -1 ? rest : rest.slice(0, space);
      const spec = space === -1 ? '' : rest.slice(space + 1);
      const parsed = parseSaveSpec(spec);
      (chains.get(chain) ?? chains.set(chain, []).get(chain)!).push({ text: spec, ...parsed });
    } else if (line === 'COMMIT') {
      flush();
      table = undefined;
    }
  }
  flush();
  return { family, source, tables };
}

