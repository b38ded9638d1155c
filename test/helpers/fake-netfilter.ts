/**
 * A faithful fake of netfilter and iproute2 behind the engine's one seam
 * (System), in the manner of knftables' fake.go: a small model of the kernel
 * and the tools, not a recorder. It keeps, per backend (iptables-legacy,
 * iptables-nft) and family, tables of chains and rules; the native nftables
 * inet tables; and `ip rule` / `ip route` / lo's addresses. It answers:
 *
 * - `*-save` from that state, in iptables-save's text (rules in save form:
 *   `-m tcp` made explicit, addresses with a prefix, hex marks, expanded
 *   target options), and `--version`;
 * - `*-restore [--noflush] [--wait=N]`: applied table by table, each table
 *   atomically at its COMMIT (an error discards the table being built and
 *   stops; tables committed before it stay, as the real tools do), failing
 *   with the real tools' wordings and exit codes (checked against iptables
 *   v1.8.9 in a scratch namespace): legacy `iptables-restore: line N failed`,
 *   nft `line N failed: Chain already exists.`, `Bad rule (does a matching
 *   rule exist in that chain?).`, `Couldn't load target ...`, and so on;
 * - `nft list ruleset inet`, `nft list ruleset` and `nft list tables` (iptables-nft's
 *   tables appear there as family ip / ip6), and `nft -f -` as one transaction;
 * - `ip rule`, `ip route`, `ip addr` as the engine uses them.
 *
 * Knobs: a missing table or extension per backend, the xtables lock held, a
 * writer that changes the state between your read and your restore, and a
 * writer that rewrites rules after each of your restores. State goes in and
 * out as text (load/save and nft scripts/listings), so tests state "before"
 * and "after" the way an operator reads them.
 *
 * test/integration/fake-netfilter.test.ts holds it to the real tools (every
 * Istio golden's input on both backends and in nft, and the failures the
 * engine must tell apart). Not modelled: packet counters, nft's "did you
 * mean" suggestions, and rule syntax outside what meshcap and Istio write.
 */
import { formatCidr, maskCidr, parseCidr } from '../../src/net/ip.js';
import { type RunOptions, type RunResult, type System, inputText, knownInput } from '../../src/backend/system.js';

export type Variant = 'legacy' | 'nft';
export type Family = 'ipv4' | 'ipv6';

interface Chain {
  /** Built-in chains have a policy; user chains have none. */
  policy?: string;
  rules: string[];
}
type Table = Map<string, Chain>;
type Tables = Map<string, Table>;

const BUILTINS: Readonly<Record<string, readonly string[]>> = {
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
  raw: ['PREROUTING', 'OUTPUT'],
  security: ['INPUT', 'FORWARD', 'OUTPUT'],
};
const KNOWN_TARGETS = new Set(['RETURN', 'ACCEPT', 'DROP', 'REJECT', 'LOG', 'REDIRECT', 'TPROXY', 'MARK', 'CONNMARK', 'CT', 'DNAT', 'SNAT', 'MASQUERADE']);
const KNOWN_MATCHES = new Set(['tcp', 'udp', 'multiport', 'owner', 'conntrack', 'mark', 'connmark', 'comment', 'addrtype', 'state']);

export interface Call {
  readonly file: string;
  readonly args: readonly string[];
  readonly input?: string;
}

export interface FakeOptions {
  /** Binaries on PATH, by name; default: both backends' save/restore for both families, the plain names, nft and ip. */
  readonly binaries?: readonly string[];
  /** The backend the plain `iptables`, `iptables-save`... names are (default nft, as on Debian). */
  readonly plain?: Variant;
  /** IPv6 disabled in the namespace (what preflight reads). */
  readonly ipv6Disabled?: boolean;
  /** Extra file contents readFile returns (e.g. /proc/self/status). */
  readonly files?: Readonly<Record<string, string>>;
  /** Symbolic link targets readLink returns. Default: a pod's view (PID 1 in this netns, no kernel threads). */
  readonly links?: Readonly<Record<string, string>>;
  /** User and group names the owner match can resolve (iptables saves the numbers). Default: root = 0. */
  readonly users?: Readonly<Record<string, number>>;
  readonly groups?: Readonly<Record<string, number>>;
}

const ALL_BINARIES = [
  ...['iptables', 'ip6tables'].flatMap((base) => [
    `${base}-legacy-save`, `${base}-legacy-restore`, `${base}-nft-save`, `${base}-nft-restore`, `${base}-save`, `${base}-restore`, base,
  ]),
  'nft',
  'ip',
];

/** The restore error: what the tool prints and its exit code. */
class ToolError extends Error {
  constructor(readonly stderr: string, readonly code: number) {
    super(stderr);
  }
}

interface IpRule {
  readonly priority: number;
  readonly mark: number;
  readonly mask?: number;
  readonly table: string;
}

export class FakeNetfilter implements System {
  readonly calls: Call[] = [];
  private readonly iptables: Record<Variant, Record<Family, Tables>> = {
    legacy: { ipv4: new Map(), ipv6: new Map() },
    nft: { ipv4: new Map(), ipv6: new Map() },
  };
  /** Native nftables inet tables: name -> chain -> { base, rules }. */
  private nftTables = new Map<string, Map<string, { base?: string; rules: string[] }>>();
  private readonly ipRules: Record<Family, IpRule[]> = { ipv4: [], ipv6: [] };
  private readonly routes: Record<Family, Map<string, string[]>> = { ipv4: new Map(), ipv6: new Map() };
  private readonly loV6 = new Set<string>(['::1/128']);
  private readonly missingTables = new Set<string>();
  private readonly missingExtensions = new Set<string>();
  private lockHeld = false;
  private beforeRestore: ((fake: FakeNetfilter) => void)[] = [];
  private afterRestore?: (fake: FakeNetfilter) => void;
  private readonly binaries: ReadonlySet<string>;
  private readonly plain: Variant;

  constructor(private readonly options: FakeOptions = {}) {
    this.binaries = new Set(options.binaries ?? ALL_BINARIES);
    this.plain = options.plain ?? 'nft';
  }

  // --- knobs -------------------------------------------------------------

  /** The kernel has no such table for this backend (module missing, or not loadable from a container). */
  withoutTable(variant: Variant, table: string, family?: Family): this {
    for (const f of family ? [family] : (['ipv4', 'ipv6'] as const)) this.missingTables.add(`${variant}/${f}/${table}`);
    return this;
  }

  /** A match or target extension (e.g. `owner`, `TPROXY`) cannot be loaded by this backend. */
  withoutExtension(variant: Variant, name: string): this {
    this.missingExtensions.add(`${variant}/${name}`);
    return this;
  }

  /** Another process holds /run/xtables.lock (legacy restores with --wait time out). */
  holdXtablesLock(held = true): this {
    this.lockHeld = held;
    return this;
  }

  /** Another writer changes the state after the next read, right before the next restore runs. */
  onNextRestore(change: (fake: FakeNetfilter) => void): this {
    this.beforeRestore.push(change);
    return this;
  }

  /** Another writer rewrites the rules after every successful restore (verify fails for ever). */
  afterEveryRestore(change: ((fake: FakeNetfilter) => void) | undefined): this {
    this.afterRestore = change;
    return this;
  }

  /** Another writer's `iptables-restore --noflush`, applied at once (no knobs fire, no call recorded). */
  writeAs(variant: Variant, family: Family, input: string): void {
    const program = `${family === 'ipv4' ? 'iptables' : 'ip6tables'}${variant === 'nft' ? '-nft' : ''}-restore`;
    const result = this.restore(variant, family, program, ['--noflush'], input, (code, stdout = '', stderr = '') => ({ file: program, args: [], code, signal: null, stdout, stderr, notFound: false }), true);
    if (result.code !== 0) throw new Error(`fake ${program}: ${result.stderr}`);
  }

  // --- state as text -----------------------------------------------------

  /** Replaces a backend's family state with iptables-save text (`*table`, `:chain`, `-A`, COMMIT). */
  load(variant: Variant, family: Family, saveText: string): this {
    const tables: Tables = new Map();
    let table: Table | undefined;
    for (const raw of saveText.split('\n')) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      if (line.startsWith('*')) {
        table = newTable(line.slice(1).trim());
        tables.set(line.slice(1).trim(), table);
      } else if (line === 'COMMIT') {
        table = undefined;
      } else if (table && line.startsWith(':')) {
        const [name, policy] = line.slice(1).split(' ');
        const chain = table.get(name!) ?? { rules: [] };
        if (policy !== '-') chain.policy = policy!;
        table.set(name!, chain);
      } else if (table && line.startsWith('-A ')) {
        const [, chain, ...rest] = line.split(' ');
        if (!table.has(chain!)) table.set(chain!, { rules: [] });
        table.get(chain!)!.rules.push(canonicalSpec(rest, family));
      }
    }
    this.iptables[variant][family] = tables;
    return this;
  }

  /** What `iptables-<variant>-save` prints (without its header comments). */
  save(variant: Variant, family: Family): string {
    const out: string[] = [];
    for (const [name, table] of this.iptables[variant][family]) {
      out.push(`*${name}`);
      const builtins = BUILTINS[name] ?? [];
      const chains = [...builtins.filter((c) => table.has(c)), ...[...table.keys()].filter((c) => !builtins.includes(c)).sort()];
      for (const chain of chains) out.push(`:${chain} ${table.get(chain)!.policy ?? '-'} [0:0]`);
      for (const chain of chains) for (const spec of table.get(chain)!.rules) out.push(`-A ${chain} ${spec}`);
      out.push('COMMIT');
    }
    return out.length ? `${out.join('\n')}\n` : '';
  }

  /** Runs an nft script (as `nft -f -` would) to set the native tables up. */
  loadNft(script: string): this {
    const result = this.nftTransaction(script);
    if (result.code !== 0) throw new Error(`fake nft: ${result.stderr}`);
    return this;
  }

  /** The nf_tables tables iptables-nft holds, as nft names them (`ip nat`, `ip6 mangle`). */
  private iptablesNftTables(): string[] {
    return (['ipv4', 'ipv6'] as const).flatMap((family) => [...this.iptables.nft[family].keys()].map((name) => `${family === 'ipv4' ? 'ip' : 'ip6'} ${name}`));
  }

  /** What `nft list ruleset inet` prints. */
  nftListing(): string {
    const out: string[] = [];
    for (const [name, chains] of this.nftTables) {
      out.push(`table inet ${name} {`);
      const entries = [...chains];
      entries.forEach(([chain, { base, rules }], i) => {
        out.push(`\tchain ${chain} {`);
        if (base) out.push(`\t\t${nftBasePrints(base)}; policy accept;`);
        for (const rule of rules) out.push(`\t\t${nftPrints(rule)}`);
        out.push('\t}');
        if (i < entries.length - 1) out.push('');
      });
      out.push('}');
    }
    return out.length ? `${out.join('\n')}\n` : '';
  }

  /** `ip rule show` of a family, as the tool prints it. */
  ipRuleShow(family: Family): string {
    const base = family === 'ipv4' ? [[0, 'from all lookup local'], [32766, 'from all lookup main'], [32767, 'from all lookup default']] : [[0, 'from all lookup local'], [32766, 'from all lookup main']];
    const rules = [
      ...base.map(([priority, text]) => ({ priority: priority as number, text: text as string })),
      ...this.ipRules[family].map((r) => ({ priority: r.priority, text: `from all fwmark 0x${r.mark.toString(16)}${r.mask === undefined ? '' : `/0x${r.mask.toString(16)}`} lookup ${r.table}` })),
    ].sort((a, b) => a.priority - b.priority);
    return rules.map((r) => `${r.priority}:\t${r.text}\n`).join('');
  }

  routeShow(family: Family, table: string): string | undefined {
    const routes = this.routes[family].get(table);
    return routes && routes.length > 0 ? routes.map((r) => `${r} \n`).join('') : undefined;
  }

  hasLoAddress(cidr: string): boolean {
    return this.loV6.has(cidr);
  }

  // --- System ------------------------------------------------------------

  which(name: string): string | undefined {
    if (name.includes('/')) return this.binaries.has(name.split('/').pop()!) ? name : undefined;
    return this.binaries.has(name) ? `/usr/sbin/${name}` : undefined;
  }

  readLink(path: string): string | undefined {
    if (this.options.links?.[path] !== undefined) return this.options.links[path];
    return path === '/proc/self/ns/net' || path === '/proc/1/ns/net' ? 'net:[4026532600]' : undefined;
  }

  readFile(path: string): string | undefined {
    if (this.options.files?.[path] !== undefined) return this.options.files[path];
    const legacyNames = (family: Family) => [...this.iptables.legacy[family].keys()].map((t) => `${t}\n`).join('');
    switch (path) {
      case '/proc/net/ip_tables_names':
        return legacyNames('ipv4');
      case '/proc/net/ip6_tables_names':
        return legacyNames('ipv6');
      case '/proc/sys/net/ipv6/conf/all/disable_ipv6':
        return this.options.ipv6Disabled ? '1\n' : '0\n';
      case '/proc/net/if_inet6':
        return this.options.ipv6Disabled ? '' : '00000000000000000000000000000001 01 80 10 80       lo\n';
      default:
        return undefined;
    }
  }

  readBytes(): Buffer | undefined {
    return undefined;
  }

  async run(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    const name = file.split('/').pop() ?? file;
    // A streamed input is read whole, as the real tools read stdin to its end.
    const input = inputText(await knownInput(options.input));
    this.calls.push(input === undefined ? { file: name, args } : { file: name, args, input });
    const done = (code: number, stdout = '', stderr = ''): RunResult => ({ file, args, code, signal: null, stdout, stderr, notFound: false });
    if (!this.binaries.has(name)) {
      return { file, args, code: 127, signal: null, stdout: '', stderr: `${file}: spawn ${file} ENOENT`, notFound: true };
    }
    const tool = /^(ip6?tables)(?:-(legacy|nft))?(-save|-restore)?$/.exec(name);
    if (tool) {
      const family: Family = tool[1] === 'iptables' ? 'ipv4' : 'ipv6';
      const variant = (tool[2] as Variant | undefined) ?? this.plain;
      const program = `${tool[1]}${variant === 'nft' && tool[2] ? '-nft' : ''}${tool[3] ?? ''}`;
      if (args.includes('--version')) return done(0, `${program} v1.8.9 (${variant === 'nft' ? 'nf_tables' : 'legacy'})\n`);
      if (tool[3] === '-save') return done(0, this.saveOutput(variant, family));
      if (tool[3] === '-restore') return this.restore(variant, family, program, args, input ?? '', done);
      return done(2, '', `${program}: the fake answers only --version for the plain binary\n`);
    }
    if (name === 'nft') {
      if (args.join(' ') === 'list ruleset inet') return done(0, this.nftListing());
      // -s (stateless): counters without their numbers.
      if (args.join(' ') === '-s list ruleset inet') return done(0, this.nftListing().replace(/\bcounter packets 0 bytes 0\b/g, 'counter'));
      // Every family: iptables-nft's tables (family ip / ip6, their content left out) and the inet ones.
      if (args.join(' ') === 'list ruleset') return done(0, `${this.iptablesNftTables().map((t) => `table ${t} {\n}\n`).join('')}${this.nftListing()}`);
      if (args.join(' ') === 'list tables') return done(0, [...this.iptablesNftTables(), ...[...this.nftTables.keys()].map((name) => `inet ${name}`)].map((t) => `table ${t}\n`).join(''));
      if (args.join(' ') === '-f -') {
        const result = this.nftTransaction(input ?? '');
        return done(result.code, '', result.stderr);
      }
      return done(1, '', `Error: the fake does not know 'nft ${args.join(' ')}'\n`);
    }
    if (name === 'ip') return this.ip(args, done);
    return done(127, '', `${name}: not faked\n`);
  }

  // --- iptables ----------------------------------------------------------

  private saveOutput(variant: Variant, family: Family): string {
    const body = this.save(variant, family);
    if (body === '') return '';
    const program = `${family === 'ipv4' ? 'iptables' : 'ip6tables'}-save`;
    const warning = variant === 'nft' && this.iptables.legacy[family].size > 0 ? '# Warning: iptables-legacy tables present, use iptables-legacy-save to see them\n' : '';
    return `${warning}# Generated by ${program} v1.8.9 on Tue Dec  1 12:00:00 2026\n${body}# Completed on Tue Dec  1 12:00:00 2026\n`;
  }

  private restore(variant: Variant, family: Family, program: string, args: readonly string[], input: string, done: (code: number, stdout?: string, stderr?: string) => RunResult, otherWriter = false): RunResult {
    if (!otherWriter) for (const hook of this.beforeRestore.splice(0)) hook(this);
    const usage = program;
    const version = `${usage} v1.8.9 (${variant === 'nft' ? 'nf_tables' : 'legacy'})`;
    // Legacy names itself without the variant; nft with it (as in their messages).
    const short = variant === 'legacy' ? `${program.startsWith('ip6') ? 'ip6tables' : 'iptables'}-restore` : program;
    // A message that ends in an extension loader's errno text is followed by a blank line.
    const parseError = (message: string, line: number) =>
      new ToolError(`${version}: ${message}\n${/:No such file or directory$|initialize table/.test(message) ? '\n' : ''}Error occurred at line: ${line}\nTry \`${usage} -h' or '${usage} --help' for more information.\n`, 2);
    const lineFailed = (line: number, why: string) => new ToolError(variant === 'legacy' ? `${short}: line ${line} failed\n` : `${short}: line ${line} failed: ${why}\n`, 1);

    if (variant === 'legacy' && this.lockHeld && args.some((a) => a.startsWith('--wait'))) {
      const seconds = args.find((a) => a.startsWith('--wait='))?.slice('--wait='.length) ?? '0';
      return done(4, '', `Another app is currently holding the xtables lock. Stopped waiting after ${seconds}s.\n`);
    }
    const noflush = args.includes('--noflush');
    const live = this.iptables[variant][family];
    const lines = input.split('\n');
    let tableName: string | undefined;
    let working: Table | undefined;
    let committedAny = false;
    /** nft: rules to delete are resolved at COMMIT too. */
    let deletions: string[] = [];
    try {
      for (let i = 0; i < lines.length; i++) {
        const n = i + 1;
        const line = lines[i]!.trim();
        if (line === '' || line.startsWith('#')) continue;
        if (line.startsWith('*')) {
          tableName = line.slice(1).trim();
          if (this.missingTables.has(`${variant}/${family}/${tableName}`) || !BUILTINS[tableName]) {
            throw variant === 'legacy'
              ? parseError(`${short}: unable to initialize table '${tableName}'`, n)
              : new ToolError(`${version}: can't initialize iptables table \`${tableName}': Table does not exist (do you need to insmod?)\nPerhaps iptables or your kernel needs to be upgraded.\n`, 2);
          }
          // Legacy initialises the table in the kernel on sight, even when the commit fails later.
          if (variant === 'legacy' && !live.has(tableName)) live.set(tableName, newTable(tableName));
          working = cloneTable(live.get(tableName) ?? newTable(tableName));
          if (!noflush) for (const chain of working.values()) chain.rules = [];
          continue;
        }
        if (!working || !tableName) throw parseError('no command specified', n);
        if (line === 'COMMIT') {
          this.checkReferences(working, deletions, variant, n, parseError);
          deletions = [];
          live.set(tableName, working);
          committedAny = true;
          working = undefined;
          tableName = undefined;
          continue;
        }
        if (line.startsWith(':')) {
          const [chain, policy] = line.slice(1).split(' ');
          const existing = working.get(chain!);
          if (existing && existing.policy !== undefined) {
            if (policy !== '-') existing.policy = policy!;
          } else if (existing) {
            existing.rules = [];
          } else {
            working.set(chain!, { rules: [] });
          }
          continue;
        }
        const [command, chainName, ...rest] = line.split(/\s+/);
        const chain = chainName ? working.get(chainName) : undefined;
        switch (command) {
          case '-N':
            if (chain) throw lineFailed(n, 'Chain already exists.');
            working.set(chainName!, { rules: [] });
            break;
          case '-X': {
            if (!chain || chain.policy !== undefined) throw lineFailed(n, 'No chain/target/match by that name.');
            const referenced = [...working.values()].some((c) => c.rules.some((spec) => jumpOf(spec) === chainName));
            if (referenced || chain.rules.length > 0) {
              if (variant === 'legacy') throw lineFailed(n, '');
              throw new ToolError(`${version}: \nline ${n}: CHAIN_DEL failed (Device or resource busy): chain ${chainName}\n`, 4);
            }
            working.delete(chainName!);
            break;
          }
          case '-F':
            if (!chain) throw lineFailed(n, 'No chain/target/match by that name.');
            chain.rules = [];
            break;
          case '-A':
          case '-I':
          case '-D': {
            const insertAt = command === '-I' && /^\d+$/.test(rest[0] ?? '') ? Number(rest.shift()) : 1;
            const spec = this.ruleSpec(rest, family, variant, working, n, parseError);
            if (!chain) throw lineFailed(n, 'No chain/target/match by that name.');
            if (command === '-A') chain.rules.push(spec);
            else if (command === '-I') chain.rules.splice(Math.min(insertAt - 1, chain.rules.length), 0, spec);
            else {
              const at = chain.rules.indexOf(spec);
              const target = jumpOf(spec);
              if (at === -1 && variant === 'nft' && target && !KNOWN_TARGETS.has(target) && !working.has(target)) {
                deletions.push(spec);
                break;
              }
              if (at === -1) throw lineFailed(n, 'Bad rule (does a matching rule exist in that chain?).');
              chain.rules.splice(at, 1);
            }
            break;
          }
          default:
            throw parseError(`unknown command ${command}`, n);
        }
      }
      if (working) throw new ToolError(`${short}: COMMIT expected at line ${lines.length + 1}\n`, 1);
    } catch (error) {
      if (error instanceof ToolError) return done(error.code, '', error.stderr);
      throw error;
    }
    if (committedAny && !otherWriter) this.afterRestore?.(this);
    return done(0);
  }

  /** A rule's spec in save form; a missing extension or jump target fails as the tools do. */
  private ruleSpec(given: readonly string[], family: Family, variant: Variant, table: Table, line: number, parseError: (message: string, line: number) => ToolError): string {
    const tokens = [...given];
    for (let i = 0; i < tokens.length; i++) {
      if (tokens[i] === '--uid-owner' || tokens[i] === '--gid-owner') {
        const name = tokens[i + 1]!;
        const ids: Readonly<Record<string, number>> = tokens[i] === '--uid-owner' ? { root: 0, ...this.options.users } : { root: 0, ...this.options.groups };
        if (!/^\d+(-\d+)?$/.test(name)) {
          const id = ids[name];
          if (id === undefined) throw parseError(`owner: Bad value for "${tokens[i]}" option: "${name}"`, line);
          tokens[i + 1] = String(id);
        }
      }
      if (tokens[i] === '-m') {
        const match = tokens[i + 1]!;
        if (this.missingExtensions.has(`${variant}/${match}`) || !KNOWN_MATCHES.has(match)) throw parseError(`Couldn't load match \`${match}':No such file or directory`, line);
      }
      if (tokens[i] === '-j' || tokens[i] === '-g') {
        const target = tokens[i + 1]!;
        if (this.missingExtensions.has(`${variant}/${target}`)) throw parseError(`Couldn't load target \`${target}':No such file or directory`, line);
        // Legacy looks a jump target up at once; nft resolves chains when the table commits.
        if (variant === 'legacy' && !KNOWN_TARGETS.has(target) && !table.has(target)) {
          throw parseError(`Couldn't load target \`${target}':No such file or directory`, line);
        }
      }
    }
    return canonicalSpec(tokens, family);
  }

  /** nft: a rule (added or to delete) that jumps to a chain the table does not have fails at COMMIT. */
  private checkReferences(table: Table, pending: readonly string[], variant: Variant, line: number, parseError: (message: string, line: number) => ToolError): void {
    if (variant !== 'nft') return;
    const specs = [...[...table.values()].flatMap((chain) => chain.rules), ...pending];
    for (const spec of specs) {
      const target = jumpOf(spec);
      if (target && !KNOWN_TARGETS.has(target) && !table.has(target)) throw parseError(`Chain '${target}' does not exist`, line);
    }
  }

  // --- nftables ----------------------------------------------------------

  private nftTransaction(script: string): { code: number; stderr: string } {
    const tables = new Map([...this.nftTables].map(([name, chains]) => [name, new Map([...chains].map(([c, v]) => [c, { ...v, rules: [...v.rules] }]))]));
    const lines = script.split('\n');
    // nft points at the object it could not find: `/dev/stdin:LINE:FROM-TO:`, then the line, then carets under the name.
    const fail = (n: number, text: string, why: string, name: string, after = 0) => {
      const at = text.indexOf(name, after);
      return { code: 1, stderr: `/dev/stdin:${n}:${at + 1}-${at + name.length}: Error: Could not process rule: ${why}\n${text}\n${' '.repeat(at)}${'^'.repeat(name.length)}\n` };
    };
    for (let i = 0; i < lines.length; i++) {
      const text = lines[i]!.trim();
      if (text === '' || text.startsWith('#')) continue;
      const n = i + 1;
      let m: RegExpExecArray | null;
      if ((m = /^add table inet (\S+)$/.exec(text))) {
        if (!tables.has(m[1]!)) tables.set(m[1]!, new Map());
      } else if ((m = /^delete table inet (\S+)$/.exec(text))) {
        if (!tables.delete(m[1]!)) return fail(n, text, 'No such file or directory', m[1]!, 'delete table inet'.length);
      } else if ((m = /^flush table inet (\S+)$/.exec(text))) {
        const table = tables.get(m[1]!);
        if (!table) return fail(n, text, 'No such file or directory', m[1]!, 'flush table inet'.length);
        for (const chain of table.values()) chain.rules = [];
      } else if ((m = /^add chain inet (\S+) (\S+)(?: \{ (.*) \})?$/.exec(text))) {
        const table = tables.get(m[1]!);
        if (!table) return fail(n, text, 'No such file or directory', m[1]!, 'add chain inet'.length);
        if (!table.has(m[2]!)) table.set(m[2]!, m[3] ? { base: m[3].replace(/\s*;\s*$/, ''), rules: [] } : { rules: [] });
      } else if ((m = /^(add|insert) rule inet (\S+) (\S+) (?:index (\d+) )?(.*)$/.exec(text))) {
        const chain = tables.get(m[2]!)?.get(m[3]!);
        if (!tables.has(m[2]!)) return fail(n, text, 'No such file or directory', m[2]!, `${m[1]} rule inet`.length);
        if (!chain) return fail(n, text, 'No such file or directory', m[3]!, `${m[1]} rule inet ${m[2]}`.length);
        // nft resolves user and group names when it adds the rule; it keeps the numbers.
        let body = m[5]!;
        for (const owner of body.matchAll(/\b(skuid|skgid) (?:!= )?([A-Za-z_][\w.-]*)/g)) {
          const ids: Readonly<Record<string, number>> = owner[1] === 'skuid' ? { root: 0, ...this.options.users } : { root: 0, ...this.options.groups };
          const id = ids[owner[2]!];
          if (id === undefined) {
            const at = text.indexOf(owner[2]!, text.indexOf(owner[0]));
            return {
              code: 1,
              stderr: `/dev/stdin:${n}:${at + 1}-${at + owner[2]!.length}: Error: ${owner[1] === 'skuid' ? 'User' : 'Group'} does not exist\n${text}\n${' '.repeat(at)}${'^'.repeat(owner[2]!.length)}\n`,
            };
          }
          body = body.replace(owner[0], owner[0].replace(owner[2]!, String(id)));
        }
        const jump = /\b(?:jump|goto) (\S+)/.exec(body)?.[1];
        if (jump && !tables.get(m[2]!)!.has(jump)) return fail(n, text, 'No such file or directory', jump, text.indexOf(' jump ') + 1);
        if (m[1] === 'add') chain.rules.push(body);
        else chain.rules.splice(Math.min(Number(m[4] ?? 0), chain.rules.length), 0, body);
      } else {
        return { code: 1, stderr: `/dev/stdin:${n}:1-1: Error: syntax error\n${text}\n` };
      }
    }
    this.nftTables = tables;
    return { code: 0, stderr: '' };
  }

  // --- iproute2 ----------------------------------------------------------

  private ip(args: readonly string[], done: (code: number, stdout?: string, stderr?: string) => RunResult): RunResult {
    const [flag, object, verb, ...rest] = args;
    const family: Family = flag === '-6' ? 'ipv6' : 'ipv4';
    const words = rest.join(' ');
    if (flag === '-6' && object === '-o' && verb === 'addr' && words === 'show dev lo') {
      return done(0, [...this.loV6].map((cidr) => `1: lo    inet6 ${cidr} scope ${cidr === '::1/128' ? 'host' : 'global'} \\       valid_lft forever preferred_lft forever\n`).join(''));
    }
    if (object === 'addr' && verb === 'add' && rest[1] === 'dev' && rest[2] === 'lo') {
      if (this.loV6.has(rest[0]!)) return done(2, '', 'Error: ipv6: address already assigned.\n');
      this.loV6.add(rest[0]!);
      return done(0);
    }
    if (object === 'rule' && verb === 'show') return done(0, this.ipRuleShow(family));
    let m: RegExpExecArray | null;
    if (object === 'rule' && (m = /^fwmark (0x[0-9a-f]+|\d+)(?:\/(0x[0-9a-f]+|\d+))? lookup (\S+)$/.exec(words))) {
      const mark = Number(m[1]);
      const mask = m[2] === undefined ? undefined : Number(m[2]);
      const rules = this.ipRules[family];
      if (verb === 'add') {
        const priority = Math.min(32766, ...rules.map((r) => r.priority)) - 1;
        rules.push({ priority, mark, ...(mask === undefined ? {} : { mask }), table: m[3]! });
        return done(0);
      }
      if (verb === 'del') {
        const at = rules.findIndex((r) => r.mark === mark && r.table === m![3] && (mask === undefined || r.mask === mask));
        if (at === -1) return done(2, '', 'RTNETLINK answers: No such file or directory\n');
        rules.splice(at, 1);
        return done(0);
      }
    }
    if (object === 'route' && verb === 'replace' && (m = /^local (0\.0\.0\.0\/0|::\/0) dev lo table (\S+)$/.exec(words))) {
      this.routes[family].set(m[2]!, [family === 'ipv4' ? 'local default dev lo scope host' : 'local default dev lo metric 1024 pref medium']);
      return done(0);
    }
    const missingTable = () => done(2, '', `Error: ${family}: FIB table does not exist.\n${verb === 'show' ? 'Dump' : 'Flush'} terminated\n`);
    if (object === 'route' && verb === 'show' && rest[0] === 'table') {
      const shown = this.routeShow(family, rest[1]!);
      return shown === undefined ? missingTable() : done(0, shown);
    }
    if (object === 'route' && verb === 'flush' && rest[0] === 'table') {
      if (!this.routes[family].get(rest[1]!)?.length) return missingTable();
      this.routes[family].delete(rest[1]!);
      return done(0);
    }
    return done(1, '', `the fake does not know 'ip ${args.join(' ')}'\n`);
  }
}

function newTable(name: string): Table {
  return new Map((BUILTINS[name] ?? []).map((chain) => [chain, { policy: 'ACCEPT', rules: [] }]));
}

function cloneTable(table: Table): Table {
  return new Map([...table].map(([name, chain]) => [name, { ...chain, rules: [...chain.rules] }]));
}

function jumpOf(spec: string): string | undefined {
  return / -[jg] (\S+)/.exec(` ${spec}`)?.[1];
}

const hex = (text: string) => `0x${Number(text).toString(16)}`;
const hexMask = (text: string) => {
  const [value, mask] = text.split('/');
  return `${hex(value!)}/${mask === undefined ? '0xffffffff' : hex(mask)}`;
};

/**
 * A rule's arguments as iptables-save prints them back: `-s/-d` (prefixed,
 * masked), `-i/-o`, `-p`, then match modules in the order given (the
 * implicit `-m tcp`/`-m udp` made explicit), then the target with its options
 * expanded. This is the tools' normalisation, written from their behaviour.
 */
export function canonicalSpec(tokens: readonly string[], family: Family): string {
  const basic: Record<'s' | 'd' | 'i' | 'o' | 'p', string | undefined> = { s: undefined, d: undefined, i: undefined, o: undefined, p: undefined };
  const modules: { name: string; options: string[] }[] = [];
  let target: string[] = [];
  let negate = false;
  let current: { name: string; options: string[] } | undefined;
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (token === '') continue;
    if (token === '!') {
      negate = true;
      continue;
    }
    const bang = negate ? '! ' : '';
    negate = false;
    if (target.length > 0) {
      target.push(bang + token);
      continue;
    }
    if (/^-[sdiop]$/.test(token)) {
      let value = tokens[++i]!;
      if (token === '-s' || token === '-d') value = canonicalAddress(value);
      basic[token[1] as keyof typeof basic] = `${bang}${token} ${value}`;
      current = undefined;
    } else if (token === '-m') {
      current = { name: tokens[++i]!, options: [] };
      modules.push(current);
    } else if (token === '-j' || token === '-g') {
      target = [token, tokens[++i]!];
    } else if (token.startsWith('--')) {
      if (!current || ((token === '--dport' || token === '--sport') && current.name !== 'tcp' && current.name !== 'udp' && current.name !== 'multiport')) {
        current = { name: basic.p?.split(' ').pop() ?? 'tcp', options: [] };
        modules.push(current);
      }
      let value = tokens[i + 1] !== undefined && !tokens[i + 1]!.startsWith('-') ? tokens[++i]! : undefined;
      if (value !== undefined && (current.name === 'mark' || current.name === 'connmark') && token === '--mark') {
        value = value.includes('/') && !value.endsWith('/0xffffffff') ? value.split('/').map(hex).join('/') : hex(value.split('/')[0]!);
      }
      current.options.push(`${bang}${token}${value === undefined ? '' : ` ${value}`}`);
    }
  }
  const parts = (['s', 'd', 'i', 'o', 'p'] as const).map((k) => basic[k]).filter((p): p is string => p !== undefined);
  for (const module of modules) parts.push(`-m ${module.name}${module.options.length ? ` ${module.options.join(' ')}` : ''}`);
  if (target.length) parts.push(canonicalTarget(target, family));
  return parts.join(' ');
}

function canonicalAddress(text: string): string {
  const cidr = parseCidr(text.includes('/') ? text : `${text}/${text.includes(':') ? 128 : 32}`);
  if (!cidr) return text;
  const masked = maskCidr(cidr);
  const b = masked.addr.bytes;
  // glibc's inet_ntop prints an IPv4-compatible (::/96) or -mapped (::ffff:0:0/96) address with a dotted tail.
  if (b.length === 16 && b.slice(0, 10).every((x) => x === 0)) {
    const tail = `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
    const compatible = b[10] === 0 && b[11] === 0 && (b[12] !== 0 || b[13] !== 0);
    const mapped = b[10] === 0xff && b[11] === 0xff;
    if (compatible) return `::${tail}/${masked.prefix}`;
    if (mapped) return `::ffff:${tail}/${masked.prefix}`;
  }
  return formatCidr(masked);
}

function canonicalTarget(target: readonly string[], family: Family): string {
  const [, name, ...options] = target;
  const option = (flag: string) => {
    const at = options.indexOf(flag);
    return at === -1 ? undefined : options[at + 1];
  };
  switch (name) {
    case 'REDIRECT': {
      const port = option('--to-ports') ?? option('--to-port');
      return `-j REDIRECT${port === undefined ? '' : ` --to-ports ${port}`}`;
    }
    case 'TPROXY':
      return `-j TPROXY --on-port ${option('--on-port') ?? '0'} --on-ip ${option('--on-ip') ?? (family === 'ipv4' ? '0.0.0.0' : '::')} --tproxy-mark ${hexMask(option('--tproxy-mark') ?? '0')}`;
    case 'MARK':
      return `-j MARK --set-xmark ${hexMask(option('--set-xmark') ?? option('--set-mark') ?? '0')}`;
    case 'CONNMARK':
      if (options.includes('--save-mark')) return '-j CONNMARK --save-mark --nfmask 0xffffffff --ctmask 0xffffffff';
      if (options.includes('--restore-mark')) return '-j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff';
      return target.join(' ');
    default:
      return target.join(' ');
  }
}

const hex8 = (n: string) => `0x${Number(n).toString(16).padStart(8, '0')}`;
/** The order nft prints conntrack states in (their bit order). */
const CT_STATES = ['invalid', 'established', 'related', 'new', 'untracked'];

/** A rule body as `nft list` prints it back: counters with numbers, quoted names, `meta` spelled out, hex marks, /32 dropped. */
function nftPrints(body: string): string {
  return body
    .replace(/\bmeta l4proto (tcp|udp) (?=.*\b\1 (dport|sport)\b)/g, '')
    .replace(/\b(iifname|oifname) (!= )?([^\s"]+)/g, '$1 $2"$3"')
    .replace(/(?<!meta )\b(skuid|skgid)\b/g, 'meta $1')
        // Prefixes masked, a full-length one printed as the bare address (inet_ntop's spelling).
    .split(' ')
    .map((token) => (/^[0-9a-f.:]+\/\d+$/.test(token) && /[.:]/.test(token) ? canonicalAddress(token).replace(/\/(32|128)$/, (all, bits: string) => (token.includes(':') === (bits === '128') ? '' : all)) : token))
    .join(' ')
    .replace(/\bct mark set mark\b/g, 'ct mark set meta mark')
    .replace(/(?<!(?:meta|ct) )\bmark (!= )?(\d+)\b/g, (_m, ne: string | undefined, n: string) => `meta mark ${ne ?? ''}${hex8(n)}`)
    .replace(/\b(meta mark set|ct mark|meta mark) (!= )?(\d+)\b/g, (_m, what: string, ne: string | undefined, n: string) => `${what} ${ne ?? ''}${hex8(n)}`)
    .replace(/\bct state (\S+)/g, (_m, states: string) => `ct state ${states.split(',').sort((x, y) => CT_STATES.indexOf(x) - CT_STATES.indexOf(y)).join(',')}`)
    .replace(/\bcounter\b(?! packets)/g, 'counter packets 0 bytes 0');
}

/** A base chain's line as nft prints it: standard priorities by name (dstnat and srcnat only on their hooks). */
function nftBasePrints(base: string): string {
  const m = /^type (\S+) hook (\S+) priority (-?\d+)$/.exec(base.trim());
  if (!m) return base;
  const [, type, hook, value] = m;
  const names: Record<string, string> = { '-300': 'raw', '-150': 'mangle', '0': 'filter', '50': 'security' };
  if (hook === 'prerouting') names['-100'] = 'dstnat';
  if (hook === 'postrouting') names['100'] = 'srcnat';
  return `type ${type} hook ${hook} priority ${names[value!] ?? value}`;
}
