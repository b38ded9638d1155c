/**
 * buildRuleset, the pure core: rule order, IPv6 twins and defaults, checked
 * on the typed ruleset and its iptables spelling. Each expectation follows
 * Istio's builder (research: istio-iptables.md, section 2.3).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseCaptureConfig, type Env } from '../../src/config/parse.js';
import type { CaptureConfig, HostFacts } from '../../src/config/types.js';
import { renderIptablesRuleLine, renderIptablesRuleSpec } from '../../src/render/iptables.js';
import { buildRuleset } from '../../src/rules/build.js';
import { type Family, type Rule, type Ruleset, type Table, rulesForFamily } from '../../src/rules/model.js';

const FACTS: HostFacts = {
  interfaceAddresses: () => ['10.244.0.7'],
  resolvConf: () => undefined,
  lookupUid: () => undefined,
};

/** A config from istio-iptables flags; IPv6 off unless the flags say otherwise. */
function config(argv: readonly string[] = [], env: Env = {}): CaptureConfig {
  return parseCaptureConfig(['--ipv6=false', ...argv], env, FACTS);
}

function build(argv: readonly string[] = [], env: Env = {}): Ruleset {
  return buildRuleset(config(argv, env));
}

/** `-A CHAIN ...` / `-I CHAIN n ...` lines of one family and table, in builder order. */
function lines(ruleset: Ruleset, table: Table, family: Family = 'ipv4'): string[] {
  return rulesForFamily(ruleset, family).filter((rule) => rule.table === table).map(renderIptablesRuleLine);
}

function chainLines(ruleset: Ruleset, table: Table, chain: string, family: Family = 'ipv4'): string[] {
  return lines(ruleset, table, family).filter((line) => line.startsWith(`-A ${chain} `) || line.startsWith(`-I ${chain} `));
}

/** What the kernel ends up with after applying -A and -I in order: table/chain -> specs. */
function effectiveChains(rules: readonly Rule[]): Map<string, string[]> {
  const chains = new Map<string, string[]>();
  for (const rule of rules) {
    const key = `${rule.table}/${rule.chain}`;
    const list = chains.get(key) ?? [];
    if (rule.insertAt === undefined) list.push(renderIptablesRuleSpec(rule));
    else list.splice(rule.insertAt - 1, 0, renderIptablesRuleSpec(rule));
    chains.set(key, list);
  }
  return chains;
}

function assertBefore(list: readonly string[], first: string, second: string): void {
  const a = list.indexOf(first);
  const b = list.indexOf(second);
  assert.ok(a !== -1, `missing: ${first}\nin:\n${list.join('\n')}`);
  assert.ok(b !== -1, `missing: ${second}\nin:\n${list.join('\n')}`);
  assert.ok(a < b, `expected\n  ${first}\nbefore\n  ${second}\nin:\n${list.join('\n')}`);
}

const toV6 = (line: string) => line.replaceAll('127.0.0.1/32', '::1/128').replaceAll('127.0.0.6/32', '::6/128');

describe('defaults', () => {
  test('the default configuration gives exactly the nat rules of Istio\'s "empty" case', () => {
    const ruleset = build();
    assert.deepEqual(lines(ruleset, 'nat'), [
      '-A ISTIO_INBOUND -p tcp --dport 15008 -j RETURN',
      '-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001',
      '-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006',
      '-A OUTPUT -j ISTIO_OUTPUT',
      '-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN',
      '-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT',
      '-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN',
      '-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN',
      '-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --gid-owner 1337 -j ISTIO_IN_REDIRECT',
      '-A ISTIO_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN',
      '-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN',
      '-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN',
    ]);
    assert.deepEqual([...new Set(ruleset.rules.map((rule) => rule.table))], ['nat'], 'no mangle or raw rules by default');
    assert.equal(ruleset.ipv6, false);
    assert.ok(!ruleset.rules.some((rule) => rule.family === 'ipv6'), 'no IPv6 rules without IPv6');
  });

  test('ports, ids, mark and loopback come from the configuration', () => {
    const ruleset = build(['-p', '25001', '-z', '25006', '-e', '25008', '-u', '7', '-g', '8', '-m', 'TPROXY', '-b', '*', '-t', '99'],
      { ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR: '127.0.0.1/8' });
    const nat = lines(ruleset, 'nat');
    const mangle = lines(ruleset, 'mangle');
    assert.ok(nat.includes('-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 25001'));
    assert.ok(nat.includes('-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 25006'));
    assert.ok(nat.includes('-A ISTIO_INBOUND -p tcp --dport 25008 -j RETURN'));
    assert.ok(nat.includes('-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/8 -p tcp ! --dport 25008 -m owner --uid-owner 7 -j ISTIO_IN_REDIRECT'));
    assert.ok(nat.includes('-A ISTIO_OUTPUT -m owner --gid-owner 8 -j RETURN'));
    assert.ok(nat.includes('-A ISTIO_OUTPUT -d 127.0.0.1/8 -j RETURN'));
    assert.ok(mangle.includes('-A ISTIO_TPROXY ! -d 127.0.0.1/8 -p tcp -j TPROXY --tproxy-mark 99/0xffffffff --on-port 25006'));
    assert.ok(mangle.includes('-A ISTIO_DIVERT -j MARK --set-mark 99'));
    assert.ok(mangle.includes('-A OUTPUT ! -d 127.0.0.1/8 -p tcp -o lo -m owner --uid-owner 7 -j MARK --set-mark 1338'), '1338 is a constant');
    assert.ok(mangle.includes('-I ISTIO_INBOUND 1 -p tcp -m mark --mark 99 -j RETURN'));
    assert.ok(!mangle.some((line) => / 1337\b/.test(line)), `the default mark leaked:\n${mangle.join('\n')}`);
    assert.ok(!nat.some((line) => /\b1500[168]\b|\b1337\b/.test(line)), `a default leaked:\n${nat.join('\n')}`);
  });

  test('the tunnel port is exempted in nat ISTIO_INBOUND even in TPROXY mode, but not in mangle', () => {
    const ruleset = build(['-m', 'TPROXY', '-b', '*']);
    assert.deepEqual(chainLines(ruleset, 'nat', 'ISTIO_INBOUND'), ['-A ISTIO_INBOUND -p tcp --dport 15008 -j RETURN']);
    assert.ok(!chainLines(ruleset, 'mangle', 'ISTIO_INBOUND').some((line) => line.includes('15008')));
    assert.ok(!lines(ruleset, 'nat').includes('-A PREROUTING -p tcp -j ISTIO_INBOUND'), 'TPROXY captures inbound in mangle');
  });
});

describe('rule order', () => {
  const FULL = ['-u', '3,4', '-g', '1,2', '-o', '9001', '-q', '9000', '-x', '10.1.0.0/16', '-i', '10.0.0.0/8',
    '--redirect-dns', '--dns-servers-v4', '10.96.0.10', '--dns-servers-v6', ''];
  const FULL_ENV = { ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE: 'ftp' };

  test('ISTIO_OUTPUT: port excludes, passthrough, uids, gids, owner groups, DNS, loopback, CIDR excludes, ports, CIDR includes', () => {
    assert.deepEqual(chainLines(build(FULL, FULL_ENV), 'nat', 'ISTIO_OUTPUT'), [
      '-A ISTIO_OUTPUT -p tcp --dport 9001 -j RETURN',
      '-A ISTIO_OUTPUT -p udp --dport 9001 -j RETURN',
      '-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN',
      '-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp -m multiport ! --dports 53,15008 -m owner --uid-owner 3 -j ISTIO_IN_REDIRECT',
      '-A ISTIO_OUTPUT -o lo -p tcp ! --dport 53 -m owner ! --uid-owner 3 -j RETURN',
      '-A ISTIO_OUTPUT -m owner --uid-owner 3 -j RETURN',
      '-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp -m multiport ! --dports 53,15008 -m owner --uid-owner 4 -j ISTIO_IN_REDIRECT',
      '-A ISTIO_OUTPUT -o lo -p tcp ! --dport 53 -m owner ! --uid-owner 4 -j RETURN',
      '-A ISTIO_OUTPUT -m owner --uid-owner 4 -j RETURN',
      '-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --gid-owner 1 -j ISTIO_IN_REDIRECT',
      '-A ISTIO_OUTPUT -o lo -p tcp ! --dport 53 -m owner ! --gid-owner 1 -j RETURN',
      '-A ISTIO_OUTPUT -m owner --gid-owner 1 -j RETURN',
      '-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --gid-owner 2 -j ISTIO_IN_REDIRECT',
      '-A ISTIO_OUTPUT -o lo -p tcp ! --dport 53 -m owner ! --gid-owner 2 -j RETURN',
      '-A ISTIO_OUTPUT -m owner --gid-owner 2 -j RETURN',
      '-A ISTIO_OUTPUT -m owner --gid-owner ftp -j RETURN',
      '-A ISTIO_OUTPUT -j ISTIO_OUTPUT_DNS',
      '-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN',
      '-A ISTIO_OUTPUT -d 10.1.0.0/16 -j RETURN',
      '-A ISTIO_OUTPUT -p tcp --dport 9000 -j ISTIO_REDIRECT',
      '-A ISTIO_OUTPUT -d 10.0.0.0/8 -j ISTIO_REDIRECT',
    ]);
  });

  test('uid rules come before gid rules, in list order', () => {
    const out = chainLines(build(['-u', '3,4', '-g', '1,2']), 'nat', 'ISTIO_OUTPUT');
    assertBefore(out, '-A ISTIO_OUTPUT -m owner --uid-owner 3 -j RETURN', '-A ISTIO_OUTPUT -m owner --uid-owner 4 -j RETURN');
    assertBefore(out, '-A ISTIO_OUTPUT -m owner --uid-owner 4 -j RETURN', '-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --gid-owner 1 -j ISTIO_IN_REDIRECT');
    assertBefore(out, '-A ISTIO_OUTPUT -m owner --gid-owner 1 -j RETURN', '-A ISTIO_OUTPUT -m owner --gid-owner 2 -j RETURN');
  });

  test('the passthrough RETURN comes before every owner rule', () => {
    const out = chainLines(build(['-u', '3']), 'nat', 'ISTIO_OUTPUT');
    const passthrough = out.indexOf('-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN');
    const firstOwner = out.findIndex((line) => line.includes('-m owner'));
    assert.ok(passthrough !== -1 && passthrough < firstOwner, out.join('\n'));
  });

  test('excludes come before includes (ports and CIDRs)', () => {
    const out = chainLines(build(FULL, FULL_ENV), 'nat', 'ISTIO_OUTPUT');
    assertBefore(out, '-A ISTIO_OUTPUT -p tcp --dport 9001 -j RETURN', '-A ISTIO_OUTPUT -p tcp --dport 9000 -j ISTIO_REDIRECT');
    assertBefore(out, '-A ISTIO_OUTPUT -d 10.1.0.0/16 -j RETURN', '-A ISTIO_OUTPUT -d 10.0.0.0/8 -j ISTIO_REDIRECT');
    assertBefore(out, '-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN', '-A ISTIO_OUTPUT -d 10.1.0.0/16 -j RETURN');

    const inbound = chainLines(build(['-b', '*', '-d', '15020,15021']), 'nat', 'ISTIO_INBOUND');
    assert.deepEqual(inbound, [
      '-A ISTIO_INBOUND -p tcp --dport 15008 -j RETURN',
      '-A ISTIO_INBOUND -p tcp --dport 15020 -j RETURN',
      '-A ISTIO_INBOUND -p tcp --dport 15021 -j RETURN',
      '-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT',
    ]);
  });

  test('-d is ignored when -b is a port list', () => {
    assert.deepEqual(chainLines(build(['-b', '80,443', '-d', '9999']), 'nat', 'ISTIO_INBOUND'), [
      '-A ISTIO_INBOUND -p tcp --dport 15008 -j RETURN',
      '-A ISTIO_INBOUND -p tcp --dport 80 -j ISTIO_IN_REDIRECT',
      '-A ISTIO_INBOUND -p tcp --dport 443 -j ISTIO_IN_REDIRECT',
    ]);
  });

  test('reroute-interface rules are inserted at 1, so the kernel sees them reversed and above everything', () => {
    const ruleset = build(['-c', 'eth9', '-k', 'eth1,eth2', '-b', '80', '-i', '10.0.0.0/8']);
    assert.deepEqual(chainLines(ruleset, 'nat', 'PREROUTING'), [
      '-A PREROUTING -i eth9 -j RETURN',
      '-I PREROUTING 1 -i eth1 -j RETURN',
      '-I PREROUTING 1 -i eth2 -j RETURN',
      '-A PREROUTING -p tcp -j ISTIO_INBOUND',
      '-I PREROUTING 1 -i eth1 -d 10.0.0.0/8 -j ISTIO_REDIRECT',
      '-I PREROUTING 1 -i eth2 -d 10.0.0.0/8 -j ISTIO_REDIRECT',
    ]);
    assert.deepEqual(effectiveChains(ruleset.rules).get('nat/PREROUTING'), [
      '-i eth2 -d 10.0.0.0/8 -j ISTIO_REDIRECT',
      '-i eth1 -d 10.0.0.0/8 -j ISTIO_REDIRECT',
      '-i eth2 -j RETURN',
      '-i eth1 -j RETURN',
      '-i eth9 -j RETURN',
      '-p tcp -j ISTIO_INBOUND',
    ]);
  });

  test('with -i *, each reroute interface is redirected wholesale', () => {
    const ruleset = build(['-k', 'eth1,eth2', '-i', '*']);
    assert.deepEqual(effectiveChains(ruleset.rules).get('nat/PREROUTING'), [
      '-i eth2 -j ISTIO_REDIRECT',
      '-i eth1 -j ISTIO_REDIRECT',
      '-i eth2 -j RETURN',
      '-i eth1 -j RETURN',
    ]);
    assert.equal(chainLines(ruleset, 'nat', 'ISTIO_OUTPUT').at(-1), '-A ISTIO_OUTPUT -j ISTIO_REDIRECT');
  });

  test('excluded interfaces: nat pairs first, then (TPROXY) the mangle pairs', () => {
    const ruleset = build(['-c', 'eth8,eth9', '-m', 'TPROXY']);
    const first = ruleset.rules.slice(0, 8).map((rule) => `${rule.table} ${renderIptablesRuleLine(rule)}`);
    assert.deepEqual(first, [
      'nat -A PREROUTING -i eth8 -j RETURN',
      'nat -A OUTPUT -o eth8 -j RETURN',
      'nat -A PREROUTING -i eth9 -j RETURN',
      'nat -A OUTPUT -o eth9 -j RETURN',
      'mangle -A PREROUTING -i eth8 -j RETURN',
      'mangle -A OUTPUT -o eth8 -j RETURN',
      'mangle -A PREROUTING -i eth9 -j RETURN',
      'mangle -A OUTPUT -o eth9 -j RETURN',
    ]);
    assert.ok(!build(['-c', 'eth8']).rules.some((rule) => rule.table === 'mangle'), 'REDIRECT mode has no mangle pairs');
  });

  test('owner groups include list: one rule with every group negated, after the proxy rules', () => {
    const out = chainLines(build([], { ISTIO_OUTBOUND_OWNER_GROUPS: 'java,202' }), 'nat', 'ISTIO_OUTPUT');
    assert.equal(out.at(-2), '-A ISTIO_OUTPUT -m owner ! --gid-owner java -m owner ! --gid-owner 202 -j RETURN');
    assert.equal(out.at(-1), '-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN');
  });

  test('TPROXY inbound: divert and tproxy chains first, then per-port rules', () => {
    assert.deepEqual(lines(build(['-m', 'TPROXY', '-b', '32000,31000']), 'mangle').slice(0, 8), [
      '-A ISTIO_DIVERT -j MARK --set-mark 1337',
      '-A ISTIO_DIVERT -j ACCEPT',
      '-A ISTIO_TPROXY ! -d 127.0.0.1/32 -p tcp -j TPROXY --tproxy-mark 1337/0xffffffff --on-port 15006',
      '-A PREROUTING -p tcp -j ISTIO_INBOUND',
      '-A ISTIO_INBOUND -p tcp --dport 32000 -m conntrack --ctstate RELATED,ESTABLISHED -j ISTIO_DIVERT',
      '-A ISTIO_INBOUND -p tcp --dport 32000 -j ISTIO_TPROXY',
      '-A ISTIO_INBOUND -p tcp --dport 31000 -m conntrack --ctstate RELATED,ESTABLISHED -j ISTIO_DIVERT',
      '-A ISTIO_INBOUND -p tcp --dport 31000 -j ISTIO_TPROXY',
    ]);
  });

  test('TPROXY tail is present even with -b \'\' (and nothing else of inbound capture)', () => {
    const ruleset = build(['-m', 'TPROXY', '-b', '']);
    assert.deepEqual(lines(ruleset, 'mangle'), [
      '-A PREROUTING -p tcp -m mark --mark 1337 -j CONNMARK --save-mark',
      '-A OUTPUT -p tcp -o lo -m mark --mark 1337 -j RETURN',
      '-A OUTPUT ! -d 127.0.0.1/32 -p tcp -o lo -m owner --uid-owner 1337 -j MARK --set-mark 1338',
      '-A OUTPUT ! -d 127.0.0.1/32 -p tcp -o lo -m owner --gid-owner 1337 -j MARK --set-mark 1338',
      '-A OUTPUT -p tcp -m connmark --mark 1337 -j CONNMARK --restore-mark',
      '-I ISTIO_INBOUND 1 -p tcp -m mark --mark 1337 -j RETURN',
      '-I ISTIO_INBOUND 2 -p tcp -s 127.0.0.6/32 -i lo -j RETURN',
      '-I ISTIO_INBOUND 3 -p tcp -i lo -m mark ! --mark 1338 -j RETURN',
    ]);
    assert.deepEqual(effectiveChains(ruleset.rules).get('mangle/ISTIO_INBOUND'), [
      '-p tcp -m mark --mark 1337 -j RETURN',
      '-p tcp -s 127.0.0.6/32 -i lo -j RETURN',
      '-p tcp -i lo -m mark ! --mark 1338 -j RETURN',
    ]);
  });

  test('TPROXY tail inserts land above the capture rules of ISTIO_INBOUND', () => {
    const chain = effectiveChains(build(['-m', 'TPROXY', '-b', '*']).rules).get('mangle/ISTIO_INBOUND');
    assert.deepEqual(chain, [
      '-p tcp -m mark --mark 1337 -j RETURN',
      '-p tcp -s 127.0.0.6/32 -i lo -j RETURN',
      '-p tcp -i lo -m mark ! --mark 1338 -j RETURN',
      '-p tcp -m conntrack --ctstate RELATED,ESTABLISHED -j ISTIO_DIVERT',
      '-p tcp -j ISTIO_TPROXY',
    ]);
  });

  test('drop-invalid: conntrack INVALID to ISTIO_DROP, in mangle', () => {
    assert.deepEqual(lines(build(['--drop-invalid']), 'mangle'), [
      '-A PREROUTING -m conntrack --ctstate INVALID -j ISTIO_DROP',
      '-A ISTIO_DROP -j DROP',
    ]);
  });

  test('a loopback include CIDR removes the app-to-itself RETURNs', () => {
    const out = chainLines(build(['-i', '127.1.2.3/32', '-u', '3', '-g', '1']), 'nat', 'ISTIO_OUTPUT');
    assert.ok(!out.some((line) => / ! --(uid|gid)-owner /.test(line)), out.join('\n'));
    assert.ok(out.includes('-A ISTIO_OUTPUT -m owner --uid-owner 3 -j RETURN'));
    assert.equal(out.at(-1), '-A ISTIO_OUTPUT -d 127.1.2.3/32 -j ISTIO_REDIRECT');
  });
});

describe('DNS', () => {
  const DNS = ['--redirect-dns', '--dns-servers-v4', '10.96.0.10', '--dns-servers-v6', '', '-u', '3', '-g', '1'];

  test('multiport appears only in the uid rule of the DNS variant', () => {
    const nat = lines(build(DNS), 'nat');
    const multiport = nat.filter((line) => line.includes('multiport'));
    assert.deepEqual(multiport, ['-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp -m multiport ! --dports 53,15008 -m owner --uid-owner 3 -j ISTIO_IN_REDIRECT']);
    assert.ok(nat.includes('-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --gid-owner 1 -j ISTIO_IN_REDIRECT'));
    assert.ok(!lines(build(['-u', '3', '-g', '1']), 'nat').some((line) => line.includes('multiport')), 'no multiport without DNS');
  });

  test('--to-port (singular) only for UDP DNS; every other REDIRECT says --to-ports', () => {
    const nat = lines(build([...DNS, '-q', '53']), 'nat');
    const redirects = nat.filter((line) => line.includes('-j REDIRECT'));
    assert.deepEqual(redirects, [
      '-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001',
      '-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006',
      '-A ISTIO_OUTPUT_DNS -p tcp --dport 53 -d 10.96.0.10/32 -j REDIRECT --to-ports 15053',
      '-A ISTIO_OUTPUT_DNS -p udp --dport 53 -d 10.96.0.10/32 -j REDIRECT --to-port 15053',
    ]);
    const all = lines(build(['--redirect-dns', '--capture-all-dns']), 'nat').filter((line) => line.includes('REDIRECT --to-port '));
    assert.deepEqual(all, ['-A ISTIO_OUTPUT_DNS -p udp --dport 53 -j REDIRECT --to-port 15053']);
  });

  test('raw table: conntrack zones per uid then gid, then per server', () => {
    assert.deepEqual(lines(build(DNS), 'raw'), [
      '-A OUTPUT -j ISTIO_OUTPUT_DNS',
      '-A ISTIO_OUTPUT_DNS -p udp --dport 53 -m owner --uid-owner 3 -j CT --zone 1',
      '-A ISTIO_OUTPUT_DNS -p udp --sport 15053 -m owner --uid-owner 3 -j CT --zone 2',
      '-A ISTIO_OUTPUT_DNS -p udp --dport 53 -m owner --gid-owner 1 -j CT --zone 1',
      '-A ISTIO_OUTPUT_DNS -p udp --sport 15053 -m owner --gid-owner 1 -j CT --zone 2',
      '-A PREROUTING -j ISTIO_INBOUND',
      '-A ISTIO_OUTPUT_DNS -p udp --dport 53 -d 10.96.0.10/32 -j CT --zone 2',
      '-A ISTIO_INBOUND -p udp --sport 53 -s 10.96.0.10/32 -j CT --zone 1',
    ]);
  });

  test('capture-all: no per-server rules', () => {
    const ruleset = build(['--redirect-dns', '--capture-all-dns']);
    assert.deepEqual(chainLines(ruleset, 'nat', 'ISTIO_OUTPUT_DNS'), [
      '-A ISTIO_OUTPUT_DNS -p tcp --dport 53 -j REDIRECT --to-ports 15053',
      '-A ISTIO_OUTPUT_DNS -p udp --dport 53 -j REDIRECT --to-port 15053',
    ]);
    assert.deepEqual(lines(ruleset, 'raw').slice(-3), [
      '-A PREROUTING -j ISTIO_INBOUND',
      '-A ISTIO_OUTPUT_DNS -p udp --dport 53 -j CT --zone 2',
      '-A ISTIO_INBOUND -p udp --sport 53 -j CT --zone 1',
    ]);
  });

  test('DNS requested without servers or capture-all: no DNS rules at all', () => {
    const ruleset = build(['--redirect-dns', '--dns-servers-v4', '', '--dns-servers-v6', '']);
    assert.ok(!ruleset.rules.some((rule) => rule.table === 'raw'));
    assert.ok(!lines(ruleset, 'nat').some((line) => line.includes('ISTIO_OUTPUT_DNS') || line.includes('multiport') || line.includes('--dport 53')));
  });
});

describe('IPv6', () => {
  // Touches every versioned rule: passthrough, loopback, TPROXY, DNS, reroute, excludes.
  const EVERYTHING = ['-m', 'TPROXY', '-b', '*', '-d', '15020', '-u', '3,4', '-g', '1', '-o', '9001', '-q', '9000', '-i', '*',
    '-k', 'eth1', '-c', 'eth9', '--drop-invalid', '--redirect-dns', '--capture-all-dns'];

  for (const [name, argv] of [
    ['TPROXY, DNS capture-all, everything', EVERYTHING],
    ['REDIRECT defaults', []],
    ['REDIRECT with inbound ports and owner groups', ['-b', '80', '-u', '3', '-g', '1']],
  ] as const) {
    test(`every versioned rule has its v6 twin when IPv6 is on (${name})`, () => {
      const on = build([...argv, '--ipv6=true'], { ISTIO_OUTBOUND_OWNER_GROUPS: 'java' });
      const v4 = rulesForFamily(on, 'ipv4').map(renderIptablesRuleLine);
      const v6 = rulesForFamily(on, 'ipv6').map(renderIptablesRuleLine);
      assert.deepEqual(v6, v4.map(toV6));
      const scoped4 = on.rules.filter((rule) => rule.family === 'ipv4').length;
      const scoped6 = on.rules.filter((rule) => rule.family === 'ipv6').length;
      assert.ok(scoped4 > 0);
      assert.equal(scoped6, scoped4, 'as many v6-only rules as v4-only rules');
      assert.ok(v6.some((line) => line.includes('::1/128')) && v6.some((line) => line.includes('::6/128')));
      assert.ok(!v6.some((line) => line.includes('127.0.0.')), 'no IPv4 address in the v6 rules');
    });

    test(`no v6 rule at all when IPv6 is off (${name})`, () => {
      const off = build([...argv, '--ipv6=false']);
      assert.ok(!off.rules.some((rule) => rule.family === 'ipv6'));
      assert.deepEqual(rulesForFamily(off, 'ipv6'), []);
      assert.ok(off.rules.some((rule) => rule.family === 'ipv4'), 'the v4 halves of versioned rules remain');
    });
  }

  test('the v6 loopback is ::1/128 whatever ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR says', () => {
    const ruleset = build(['--ipv6=true'], { ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR: '127.0.0.1/8' });
    assert.ok(lines(ruleset, 'nat', 'ipv4').includes('-A ISTIO_OUTPUT -d 127.0.0.1/8 -j RETURN'));
    assert.ok(lines(ruleset, 'nat', 'ipv6').includes('-A ISTIO_OUTPUT -d ::1/128 -j RETURN'));
  });

  test('CIDRs go to their own family only', () => {
    const ruleset = build(['--ipv6=true', '-i', '10.0.0.0/8,2001:db8::/32', '-x', '10.1.0.0/16,2001:db8:1::/48', '-k', 'eth1']);
    const v4 = lines(ruleset, 'nat', 'ipv4');
    const v6 = lines(ruleset, 'nat', 'ipv6');
    assert.ok(v4.includes('-A ISTIO_OUTPUT -d 10.0.0.0/8 -j ISTIO_REDIRECT'));
    assert.ok(v4.includes('-A ISTIO_OUTPUT -d 10.1.0.0/16 -j RETURN'));
    assert.ok(v4.includes('-I PREROUTING 1 -i eth1 -d 10.0.0.0/8 -j ISTIO_REDIRECT'));
    assert.ok(v6.includes('-A ISTIO_OUTPUT -d 2001:db8::/32 -j ISTIO_REDIRECT'));
    assert.ok(v6.includes('-A ISTIO_OUTPUT -d 2001:db8:1::/48 -j RETURN'));
    assert.ok(v6.includes('-I PREROUTING 1 -i eth1 -d 2001:db8::/32 -j ISTIO_REDIRECT'));
    assert.ok(!v4.some((line) => line.includes('2001:db8')));
    assert.ok(!v6.some((line) => /10\.[01]\.0\.0/.test(line)));
  });

  test('IPv6 CIDRs with IPv6 off produce nothing', () => {
    const ruleset = build(['-i', '2001:db8::/32', '-x', '2001:db8:1::/48']);
    assert.ok(!ruleset.rules.some((rule) => rule.matches.some((match) => (match.kind === 'dst' || match.kind === 'src') && match.net.cidr.addr.family === 6)));
  });

  test('DNS servers: each family gets its own servers; nat jump only where there are servers, raw jump in both', () => {
    const v4only = build(['--ipv6=true', '--redirect-dns', '--dns-servers-v4', '10.96.0.10', '--dns-servers-v6', '']);
    assert.ok(lines(v4only, 'nat', 'ipv4').includes('-A ISTIO_OUTPUT -j ISTIO_OUTPUT_DNS'));
    assert.ok(!lines(v4only, 'nat', 'ipv6').some((line) => line.includes('ISTIO_OUTPUT_DNS')));
    assert.ok(lines(v4only, 'raw', 'ipv6').includes('-A OUTPUT -j ISTIO_OUTPUT_DNS'));
    assert.ok(!lines(v4only, 'raw', 'ipv6').includes('-A PREROUTING -j ISTIO_INBOUND'));
    assert.ok(lines(v4only, 'nat', 'ipv6').some((line) => line.includes('multiport')), 'the uid DNS variant is global');

    const both = build(['--ipv6=true', '--redirect-dns', '--dns-servers-v4', '10.96.0.10', '--dns-servers-v6', '::127.0.0.53']);
    assert.deepEqual(chainLines(both, 'nat', 'ISTIO_OUTPUT_DNS', 'ipv6'), [
      '-A ISTIO_OUTPUT_DNS -p tcp --dport 53 -d ::127.0.0.53/128 -j REDIRECT --to-ports 15053',
      '-A ISTIO_OUTPUT_DNS -p udp --dport 53 -d ::127.0.0.53/128 -j REDIRECT --to-port 15053',
    ]);
    assert.ok(!lines(both, 'nat', 'ipv6').some((line) => line.includes('10.96.0.10')));
    assert.ok(!lines(both, 'raw', 'ipv4').some((line) => line.includes('::127.0.0.53')));
    assert.ok(lines(both, 'raw', 'ipv6').includes('-A PREROUTING -j ISTIO_INBOUND'));
  });
});

describe('purity', () => {
  test('same config, same ruleset; the config is not modified', () => {
    const c = config(['-m', 'TPROXY', '-b', '*', '-k', 'eth1', '-i', '10.0.0.0/8', '--redirect-dns', '--capture-all-dns']);
    const before = JSON.stringify(c);
    assert.deepEqual(buildRuleset(c), buildRuleset(c));
    assert.equal(JSON.stringify(c), before);
  });
});
