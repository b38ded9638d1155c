/**
 * Renderers: iptables-restore text, Istio's dry-run trace and the native
 * nftables transaction, from rulesets built by the pure core or by hand.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseCaptureConfig, type Env } from '../../src/config/parse.js';
import type { HostFacts } from '../../src/config/types.js';
import {
  chainsOf,
  renderIptablesMatch,
  renderIptablesRuleLine,
  istioRestoreChunks,
  renderIstioRestore,
} from '../../src/render/iptables.js';
import { renderSaveSpec, saveFormCidr } from '../../src/render/iptables-save-form.js';
import { nftChainName, renderNftCleanup, renderNftRuleBody, renderNftTransaction } from '../../src/render/nftables.js';
import { m, net, t } from '../../src/rules/build.js';
import { renderDryRun } from '../../src/reconcile/dry-run.js';
import { dryRunState, planCapture } from '../../src/reconcile/engine.js';
import { buildRuleset } from '../../src/rules/build.js';
import type { FamilyScope, Match, Rule, Ruleset, Table, Target } from '../../src/rules/model.js';

const FACTS: HostFacts = { interfaceAddresses: () => ['10.244.0.7'], resolvConf: () => undefined, lookupUid: () => undefined };

/** The trace --dry-run prints: the plan against a clean state, rendered. */
async function dryRunTrace(argv: readonly string[] = []): Promise<string> {
  const config = parseCaptureConfig(['--ipv6=false', ...argv], {}, FACTS);
  return renderDryRun(planCapture(config, dryRunState()));
}

function build(argv: readonly string[] = [], env: Env = {}): Ruleset {
  return buildRuleset(parseCaptureConfig(['--ipv6=false', ...argv], env, FACTS));
}

function rule(table: Table, chain: string, matches: Match[], target: Target, extra: { family?: FamilyScope; insertAt?: number } = {}): Rule {
  const base = { table, chain, family: extra.family ?? 'both', matches, target, why: 'test' } as const;
  return extra.insertAt === undefined ? base : { ...base, insertAt: extra.insertAt };
}

const nft = (ruleset: Ruleset) => renderNftTransaction(ruleset);
const nftRules = (ruleset: Ruleset, table: string) =>
  nft(ruleset).filter((line) => line.startsWith(`add rule inet ${table} `) || line.startsWith(`insert rule inet ${table} `));

describe('iptables-restore text', () => {
  test('tables in filter, mangle, nat, raw order; -N lines, rules, COMMIT', () => {
    const ruleset = build(['-m', 'TPROXY', '-b', '*', '--redirect-dns', '--capture-all-dns']);
    const text = renderIstioRestore(ruleset, 'ipv4');
    const headers = text.filter((line) => line.startsWith('* '));
    assert.deepEqual(headers, ['* mangle', '* nat', '* raw']);
    assert.equal(text.filter((line) => line === 'COMMIT').length, 3);
    // Each block: header, -N lines, then rules, then COMMIT.
    let state: 'out' | 'decl' | 'rules' = 'out';
    for (const line of text) {
      if (line.startsWith('* ')) {
        assert.equal(state, 'out', line);
        state = 'decl';
      } else if (line.startsWith('-N ')) {
        assert.equal(state, 'decl', `-N after a rule: ${line}`);
      } else if (line === 'COMMIT') {
        state = 'out';
      } else {
        assert.ok(/^-[AI] /.test(line), line);
        state = 'rules';
      }
    }
  });

  test('-N for chains in order of first appearance, then jump-only targets; never built-ins', () => {
    assert.deepEqual(renderIstioRestore(build(), 'ipv4').slice(0, 5), [
      '* nat',
      '-N ISTIO_INBOUND',
      '-N ISTIO_REDIRECT',
      '-N ISTIO_IN_REDIRECT',
      '-N ISTIO_OUTPUT',
    ]);
    const rules = [
      rule('nat', 'PREROUTING', [], t.jump('ISTIO_LATE')),
      rule('nat', 'ISTIO_FIRST', [], t.jump('ISTIO_SECOND')),
      rule('nat', 'ISTIO_SECOND', [], t.return),
      rule('nat', 'OUTPUT', [], t.jump('ISTIO_FIRST')),
    ];
    assert.deepEqual(chainsOf(rules), ['ISTIO_FIRST', 'ISTIO_SECOND', 'ISTIO_LATE']);
    // TPROXY mangle: ISTIO_INBOUND only appears as a jump target before its own rules.
    assert.deepEqual(renderIstioRestore(build(['-m', 'TPROXY', '-b', '']), 'ipv4').slice(0, 3), ['* mangle', '-N ISTIO_INBOUND', '-A PREROUTING -p tcp -m mark --mark 1337 -j CONNMARK --save-mark']);
  });

  test('match spellings, negations and nft-only matches', () => {
    assert.equal(renderIptablesMatch(m.dst(net('127.0.0.1/32'), true)), '! -d 127.0.0.1/32');
    assert.equal(renderIptablesMatch(m.src(net('::6/128'))), '-s ::6/128');
    assert.equal(renderIptablesMatch(m.dport('tcp', 15008, true)), '! --dport 15008');
    assert.equal(renderIptablesMatch(m.dport('tcp', [53, 15008], true)), '-m multiport ! --dports 53,15008');
    assert.equal(renderIptablesMatch(m.uid('1337', true)), '-m owner ! --uid-owner 1337');
    assert.equal(renderIptablesMatch(m.gid('java')), '-m owner --gid-owner java');
    assert.equal(renderIptablesMatch(m.mark(1338, true)), '-m mark ! --mark 1338');
    assert.equal(renderIptablesMatch(m.connmark(1337)), '-m connmark --mark 1337');
    assert.equal(renderIptablesMatch(m.ctstate('RELATED', 'ESTABLISHED')), '-m conntrack --ctstate RELATED,ESTABLISHED');
    assert.equal(renderIptablesMatch({ kind: 'proto', proto: 'tcp', only: 'nft' }), undefined);
    assert.equal(renderIptablesMatch(m.tcpIptablesOnly), '-p tcp');
  });

  test('targets, and -I with its position', () => {
    const line = (target: Target, insertAt?: number) =>
      renderIptablesRuleLine(rule('nat', 'ISTIO_X', [], target, insertAt === undefined ? {} : { insertAt }));
    assert.equal(line(t.redirect(15001)), '-A ISTIO_X -j REDIRECT --to-ports 15001');
    assert.equal(line(t.redirect(15053, true)), '-A ISTIO_X -j REDIRECT --to-port 15053');
    assert.equal(line(t.tproxy(15006, 1337)), '-A ISTIO_X -j TPROXY --tproxy-mark 1337/0xffffffff --on-port 15006');
    assert.equal(line(t.ctZone(2)), '-A ISTIO_X -j CT --zone 2');
    assert.equal(line(t.saveMark), '-A ISTIO_X -j CONNMARK --save-mark');
    assert.equal(line(t.restoreMark), '-A ISTIO_X -j CONNMARK --restore-mark');
    assert.equal(line(t.setMark(1338)), '-A ISTIO_X -j MARK --set-mark 1338');
    assert.equal(line(t.return, 3), '-I ISTIO_X 3 -j RETURN');
  });

  test('dry-run trace: state checks, v4 restore, v6 restore only with IPv6, final dumps', async () => {
    const off = (await dryRunTrace()).split('\n');
    assert.deepEqual(off.slice(0, 3), ['iptables-save', 'ip6tables-save', '* nat']);
    assert.deepEqual(off.slice(-3), ['COMMIT', 'iptables-save', ''], 'ip6tables-save at the start always, at the end only with IPv6');

    const on = (await dryRunTrace(['--ipv6=true'])).split('\n');
    assert.deepEqual(on.slice(-3), ['iptables-save', 'ip6tables-save', '']);
    assert.equal(on.filter((line) => line === '* nat').length, 2);
    assert.ok(on.indexOf('-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN') < on.indexOf('-A ISTIO_OUTPUT -d ::1/128 -j RETURN'), 'v4 before v6');
  });
});

describe('nftables transaction', () => {
  test('tables nat, mangle, raw; each added, flushed, chains declared, then rules', () => {
    const lines = nft(build(['-m', 'TPROXY', '-b', '*', '--redirect-dns', '--capture-all-dns']));
    const tables = lines.filter((line) => line.startsWith('add table'));
    assert.deepEqual(tables, ['add table inet istio-proxy-nat', 'add table inet istio-proxy-mangle', 'add table inet istio-proxy-raw']);
    for (const name of ['istio-proxy-nat', 'istio-proxy-mangle', 'istio-proxy-raw']) {
      const start = lines.indexOf(`add table inet ${name}`);
      assert.equal(lines[start + 1], `flush table inet ${name}`);
    }
    assert.ok(lines.includes('add chain inet istio-proxy-nat output { type nat hook output priority -100 ; }'));
    assert.ok(!lines.some((line) => line.startsWith('add chain inet istio-proxy-nat prerouting')), 'TPROXY leaves nat prerouting empty');
    assert.ok(lines.includes('add chain inet istio-proxy-mangle prerouting { type filter hook prerouting priority -150 ; }'));
    assert.ok(lines.includes('add chain inet istio-proxy-mangle output { type route hook output priority -150 ; }'));
    assert.ok(lines.includes('add chain inet istio-proxy-raw output { type filter hook output priority -300 ; }'));
  });

  test('only tables and chains that get rules are declared', () => {
    const lines = nft(build());
    assert.deepEqual(lines.slice(0, 7), [
      'add table inet istio-proxy-nat',
      'flush table inet istio-proxy-nat',
      'add chain inet istio-proxy-nat output { type nat hook output priority -100 ; }',
      'add chain inet istio-proxy-nat istio-inbound',
      'add chain inet istio-proxy-nat istio-redirect',
      'add chain inet istio-proxy-nat istio-in-redirect',
      'add chain inet istio-proxy-nat istio-output',
    ]);
    assert.ok(!lines.some((line) => line.includes('istio-proxy-mangle') || line.includes('istio-proxy-raw')));
    assert.ok(!lines.some((line) => line.includes(' prerouting')), 'nat prerouting has no rules by default');
  });

  test('an insert into an empty chain, or past its end, becomes an add; otherwise index = position - 1', () => {
    const ruleset: Ruleset = {
      ipv6: false,
      rules: [
        rule('nat', 'ISTIO_OUTPUT', [m.out('a')], t.return, { insertAt: 1 }),
        rule('nat', 'ISTIO_OUTPUT', [m.out('b')], t.return, { insertAt: 1 }),
        rule('nat', 'ISTIO_OUTPUT', [m.out('c')], t.return, { insertAt: 5 }),
        rule('nat', 'ISTIO_OUTPUT', [m.out('d')], t.return, { insertAt: 2 }),
        rule('nat', 'ISTIO_OUTPUT', [m.out('e')], t.return),
        rule('nat', 'ISTIO_REDIRECT', [m.out('f')], t.return, { insertAt: 2 }),
      ],
    };
    assert.deepEqual(nftRules(ruleset, 'istio-proxy-nat'), [
      'add rule inet istio-proxy-nat istio-output oifname a counter return',
      'insert rule inet istio-proxy-nat istio-output index 0 oifname b counter return',
      'add rule inet istio-proxy-nat istio-output oifname c counter return',
      'insert rule inet istio-proxy-nat istio-output index 1 oifname d counter return',
      'add rule inet istio-proxy-nat istio-output oifname e counter return',
      'add rule inet istio-proxy-nat istio-redirect oifname f counter return',
    ]);
  });

  test('reroute interfaces and the TPROXY tail use the insert conversion as Istio does', () => {
    const prerouting = nftRules(build(['-k', 'eth1,eth2', '-i', '10.0.0.0/8']), 'istio-proxy-nat').filter((line) => line.includes(' prerouting '));
    assert.deepEqual(prerouting, [
      'add rule inet istio-proxy-nat prerouting iifname eth1 counter return',
      'insert rule inet istio-proxy-nat prerouting index 0 iifname eth2 counter return',
      'insert rule inet istio-proxy-nat prerouting index 0 iifname eth1 ip daddr 10.0.0.0/8 counter jump istio-redirect',
      'insert rule inet istio-proxy-nat prerouting index 0 iifname eth2 ip daddr 10.0.0.0/8 counter jump istio-redirect',
    ]);
    const inboundEmpty = nftRules(build(['-m', 'TPROXY', '-b', '']), 'istio-proxy-mangle').filter((line) => line.includes(' istio-inbound '));
    assert.deepEqual(inboundEmpty, [
      'add rule inet istio-proxy-mangle istio-inbound meta l4proto tcp mark 1337 counter return',
      'add rule inet istio-proxy-mangle istio-inbound iifname lo meta l4proto tcp ip saddr 127.0.0.6/32 counter return',
      'add rule inet istio-proxy-mangle istio-inbound iifname lo meta l4proto tcp mark != 1338 counter return',
    ]);
    const inboundAll = nftRules(build(['-m', 'TPROXY', '-b', '*']), 'istio-proxy-mangle').filter((line) => line.includes(' istio-inbound '));
    assert.deepEqual(inboundAll.slice(-3), [
      'insert rule inet istio-proxy-mangle istio-inbound index 0 meta l4proto tcp mark 1337 counter return',
      'insert rule inet istio-proxy-mangle istio-inbound index 1 iifname lo meta l4proto tcp ip saddr 127.0.0.6/32 counter return',
      'insert rule inet istio-proxy-mangle istio-inbound index 2 iifname lo meta l4proto tcp mark != 1338 counter return',
    ]);
  });

  test('raw-table owner matches say meta skuid/skgid; nat ones do not', () => {
    const ruleset = build(['--redirect-dns', '--dns-servers-v4', '10.96.0.10', '--dns-servers-v6', '', '-u', '3', '-g', '1']);
    const raw = nftRules(ruleset, 'istio-proxy-raw');
    assert.ok(raw.includes('add rule inet istio-proxy-raw istio-output-dns udp dport 53 meta skuid 3 counter ct zone set 1'));
    assert.ok(raw.includes('add rule inet istio-proxy-raw istio-output-dns udp sport 15053 meta skgid 1 counter ct zone set 2'));
    assert.ok(raw.filter((line) => /sk[ug]id/.test(line)).every((line) => /meta sk[ug]id/.test(line)));
    const nat = nftRules(ruleset, 'istio-proxy-nat');
    const owners = nat.filter((line) => /sk[ug]id/.test(line));
    assert.ok(owners.length > 0);
    assert.ok(owners.every((line) => !line.includes('meta sk')), owners.join('\n'));
    assert.ok(nat.includes('add rule inet istio-proxy-nat istio-output oifname lo meta l4proto tcp ip daddr != 127.0.0.1/32 tcp dport != { 53, 15008 } skuid 3 counter jump istio-in-redirect'));
  });

  test('inet dedup: the raw PREROUTING jump is written once for both families', () => {
    const both = build(['--ipv6=true', '--redirect-dns', '--dns-servers-v4', '10.96.0.10', '--dns-servers-v6', '2001:db8::53']);
    assert.equal(both.rules.filter((r) => r.table === 'raw' && r.chain === 'PREROUTING').length, 2, 'iptables needs one per family');
    const jumps = nftRules(both, 'istio-proxy-raw').filter((line) => line.includes(' prerouting '));
    assert.deepEqual(jumps, ['add rule inet istio-proxy-raw prerouting counter jump istio-inbound']);
    // Versioned rules differ by address family and are all kept.
    const raw = nftRules(both, 'istio-proxy-raw');
    assert.ok(raw.includes('add rule inet istio-proxy-raw istio-output-dns udp dport 53 ip daddr 10.96.0.10/32 counter ct zone set 2'));
    assert.ok(raw.includes('add rule inet istio-proxy-raw istio-output-dns udp dport 53 ip6 daddr 2001:db8::53/128 counter ct zone set 2'));
    // One jump from istio-output to istio-output-dns too.
    assert.equal(nftRules(both, 'istio-proxy-nat').filter((line) => line.endsWith('istio-output counter jump istio-output-dns')).length, 1);
    // The v4 passthrough and its v6 twin are different rules.
    const nat = nftRules(both, 'istio-proxy-nat');
    assert.ok(nat.includes('add rule inet istio-proxy-nat istio-output oifname lo ip saddr 127.0.0.6/32 counter return'));
    assert.ok(nat.includes('add rule inet istio-proxy-nat istio-output oifname lo ip6 saddr ::6/128 counter return'));
  });

  test('nft match order and implicit protocols', () => {
    const body = (r: Rule) => renderNftRuleBody(r);
    assert.equal(
      body(rule('nat', 'ISTIO_OUTPUT', [m.out('lo'), m.dst(net('127.0.0.1/32'), true), m.tcp, m.dport('tcp', 15008, true), m.gid('1')], t.jump('ISTIO_IN_REDIRECT'))),
      'oifname lo meta l4proto tcp ip daddr != 127.0.0.1/32 tcp dport != 15008 skgid 1 counter jump istio-in-redirect',
    );
    assert.equal(body(rule('nat', 'ISTIO_OUTPUT', [m.tcpIptablesOnly, m.dport('tcp', 9001)], t.return)), 'tcp dport 9001 counter return');
    assert.equal(body(rule('raw', 'ISTIO_INBOUND', [m.udpIptablesOnly, m.sport('udp', 53), m.src(net('10.96.0.10/32'))], t.ctZone(1))),
      'udp sport 53 ip saddr 10.96.0.10/32 counter ct zone set 1');
    assert.equal(body(rule('mangle', 'ISTIO_TPROXY', [m.dst(net('::1/128'), true), m.tcp], t.tproxy(15006, 1337), { family: 'ipv6' })),
      'meta l4proto tcp ip6 daddr != ::1/128 tproxy ip6 to :15006 meta mark set 1337 counter accept');
    assert.equal(body(rule('mangle', 'ISTIO_TPROXY', [m.dst(net('127.0.0.1/32'), true), m.tcp], t.tproxy(15006, 1337), { family: 'ipv4' })),
      'meta l4proto tcp ip daddr != 127.0.0.1/32 tproxy ip to :15006 meta mark set 1337 counter accept');
    const dropInvalid = nftRules(build(['--drop-invalid']), 'istio-proxy-mangle');
    assert.deepEqual(dropInvalid, [
      'add rule inet istio-proxy-mangle prerouting meta l4proto tcp ct state invalid counter jump istio-drop',
      'add rule inet istio-proxy-mangle istio-drop counter drop',
    ]);
    assert.deepEqual(nftRules(build(['-o', '9001']), 'istio-proxy-nat').filter((line) => line.includes('9001')), [
      'add rule inet istio-proxy-nat istio-output tcp dport 9001 counter return',
      'add rule inet istio-proxy-nat istio-output udp dport 9001 counter return',
    ]);
  });

  test('chain names and cleanup', () => {
    assert.equal(nftChainName('PREROUTING'), 'prerouting');
    assert.equal(nftChainName('OUTPUT'), 'output');
    assert.equal(nftChainName('ISTIO_IN_REDIRECT'), 'istio-in-redirect');
    assert.equal(nftChainName('ISTIO_OUTPUT_DNS'), 'istio-output-dns');
    assert.deepEqual(renderNftCleanup(), [
      'add table inet istio-proxy-nat',
      'delete table inet istio-proxy-nat',
      'add table inet istio-proxy-mangle',
      'delete table inet istio-proxy-mangle',
      'add table inet istio-proxy-raw',
      'delete table inet istio-proxy-raw',
    ]);
  });

  test('IPv6 off: no ip6 matches in the transaction', () => {
    const lines = nft(build(['-m', 'TPROXY', '-b', '*', '--redirect-dns', '--capture-all-dns', '-i', '10.0.0.0/8,2001:db8::/32']));
    assert.ok(!lines.some((line) => line.includes('ip6 ')), lines.filter((line) => line.includes('ip6 ')).join('\n'));
    const on = nft(build(['--ipv6=true', '-m', 'TPROXY', '-b', '*']));
    assert.ok(on.includes('add rule inet istio-proxy-mangle istio-tproxy meta l4proto tcp ip6 daddr != ::1/128 tproxy ip6 to :15006 meta mark set 1337 counter accept'));
  });
});

describe('long exclude lists', () => {
  const cidrs = Array.from({ length: 700 }, (_, i) => `198.${18 + (i >> 8)}.${i & 255}.0/24`);

  test('the restore input in chunks: each ends a line, and together they are the lines', () => {
    const ruleset = build(['-x', cidrs.join(',')]);
    const chunks = [...istioRestoreChunks(ruleset, 'ipv4')];
    assert.ok(chunks.length > 2, 'hundreds of rules come in several chunks');
    for (const chunk of chunks) assert.ok(chunk.endsWith('\n'), JSON.stringify(chunk.slice(-20)));
    assert.equal(chunks.join(''), `${renderIstioRestore(ruleset, 'ipv4').join('\n')}\n`);
    assert.equal(chunks.join('').split('\n').filter((line) => line.startsWith('-A ISTIO_OUTPUT -d 198.')).length, 700);
  });

  test('a masked IPv4 prefix saves as its text; host bits and IPv6 are rendered', () => {
    for (const text of ['198.18.0.0/15', '10.0.0.1/32', '0.0.0.0/0', '10.1.2.3/8', '2001:db8::/32', '2001:DB8::1/32', '::127.0.0.53/128']) {
      const dst = net(text);
      const spec = renderSaveSpec({ table: 'nat', chain: 'ISTIO_OUTPUT', family: 'both', matches: [m.dst(dst)], target: t.return, why: '' }, dst.cidr.addr.family === 4 ? 'ipv4' : 'ipv6');
      assert.equal(spec, `-d ${saveFormCidr(dst.cidr)} -j RETURN`, text);
    }
  });
});
