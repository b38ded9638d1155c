/**
 * The simulator on its own, and its three rule sources against each other: a
 * config's rules, the same rules read back from save form, and from a native
 * nftables listing must send every packet of a grid to the same place.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseCaptureConfig } from '../../src/config/parse.js';
import type { HostFacts } from '../../src/config/types.js';
import { parseIp } from '../../src/net/ip.js';
import { nftTableOps } from '../../src/render/nftables.js';
import { desiredListing } from '../../src/state/nft-view.js';
import { buildRuleset } from '../../src/rules/build.js';
import type { Family } from '../../src/rules/model.js';
import { simRulesetFromConfig } from '../../src/trace/from-config.js';
import { parseNftBody, simRulesetFromNft } from '../../src/trace/from-nft.js';
import { parseSaveSpec, simRulesetFromSave, tokenizeSpec } from '../../src/trace/from-save.js';
import type { Packet, SimRuleset } from '../../src/trace/model.js';
import { simulate } from '../../src/trace/simulate.js';
import { saveTextOf } from '../helpers/sim.js';

const FACTS: HostFacts = { interfaceAddresses: () => ['198.18.0.2'], resolvConf: () => 'nameserver 198.18.0.1\n', lookupUid: () => undefined };
const config = (args: string[]) => parseCaptureConfig(args, {}, FACTS);
const ip = (text: string) => parseIp(text)!;

function packet(p: Partial<Omit<Packet, 'src' | 'dst'>> & { dst: string; dport: number; src?: string }): Packet {
  const dst = ip(p.dst);
  const family: Family = dst.family === 4 ? 'ipv4' : 'ipv6';
  const direction = p.direction ?? 'outbound';
  return {
    direction,
    family,
    proto: p.proto ?? 'tcp',
    src: ip(p.src ?? (family === 'ipv4' ? '198.18.0.2' : '2001:db8::2')),
    dst,
    sport: p.sport ?? 40000,
    dport: p.dport,
    state: p.state ?? 'new',
    mark: p.mark ?? 0,
    ctmark: 0,
    ...(direction === 'outbound' ? { uid: p.uid ?? 0, gid: p.gid ?? p.uid ?? 0, outIface: p.outIface ?? 'eth0' } : { inIface: p.inIface ?? 'eth0' }),
  };
}

const DEFAULT = ['-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '', '-b', '*', '-d', '15090,15021,15020', '--ipv6=false'];

describe('simulate over a configuration', () => {
  const rs = simRulesetFromConfig(buildRuleset(config(DEFAULT)), 'ipv4');
  const verdict = (p: Packet) => simulate(rs, p).verdict;

  test('app traffic to a remote service is redirected to the outbound port on loopback', () => {
    const v = verdict(packet({ dst: '10.96.0.10', dport: 80 }));
    assert.deepEqual([v.kind, v.kind === 'redirect' && v.port, v.kind === 'redirect' && v.address], ['redirect', 15001, '127.0.0.1']);
  });
  test("the proxy's own traffic and UDP pass", () => {
    assert.equal(verdict(packet({ dst: '10.96.0.10', dport: 80, uid: 1337 })).kind, 'pass');
    assert.equal(verdict(packet({ dst: '10.96.0.10', dport: 5000, proto: 'udp' })).kind, 'pass');
  });
  test('inbound: captured ports go to 15006, excluded and tunnel ports pass', () => {
    const inbound = (dport: number) => verdict(packet({ direction: 'inbound', src: '10.0.0.9', dst: '198.18.0.2', dport }));
    assert.deepEqual(inbound(8080), { kind: 'redirect', port: 15006, address: '198.18.0.2', summary: inbound(8080).summary });
    assert.equal(inbound(15021).kind, 'pass');
    assert.equal(inbound(15008).kind, 'pass');
  });
  test('an established connection does not consult nat', () => {
    assert.equal(verdict(packet({ dst: '10.96.0.10', dport: 80, state: 'established' })).kind, 'pass');
  });
  test('the trace records the rules it passed, in order, with the first failing match', () => {
    const result = simulate(rs, packet({ dst: '10.96.0.10', dport: 80, uid: 1337 }));
    const rules = result.steps.filter((s) => s.kind === 'rule');
    const matched = rules.find((s) => s.kind === 'rule' && s.matched && s.text === '-m owner --uid-owner 1337 -j RETURN');
    assert.ok(matched, JSON.stringify(rules));
    const first = rules[1];
    assert.ok(first?.kind === 'rule' && !first.matched && /out iface eth0 is not lo/.test(first.reason));
  });
  test('IPv6 packets pass when the config writes no IPv6 rules', () => {
    const v6 = simRulesetFromConfig(buildRuleset(config(DEFAULT)), 'ipv6');
    assert.equal(simulate(v6, packet({ dst: '2001:db8::1', dport: 80 })).verdict.kind, 'pass');
  });
  test('TPROXY: inbound is handed over with the mark; established packets are diverted with the mark', () => {
    const t = simRulesetFromConfig(buildRuleset(config([...DEFAULT, '-m', 'TPROXY'])), 'ipv4');
    const fresh = simulate(t, packet({ direction: 'inbound', src: '10.0.0.9', dst: '198.18.0.2', dport: 8080 }));
    assert.deepEqual([fresh.verdict.kind, fresh.final.mark], ['tproxy', 1337]);
    const later = simulate(t, packet({ direction: 'inbound', src: '10.0.0.9', dst: '198.18.0.2', dport: 8080, state: 'established' }));
    assert.deepEqual([later.verdict.kind, later.final.mark], ['pass', 1337]);
  });
});

describe('netfilter semantics on hand-made rules', () => {
  const rs = (text: string): SimRuleset => simRulesetFromSave(text, 'ipv4', 'test');
  const p = packet({ dst: '10.0.0.1', dport: 80 });

  test('goto: when the target returns, the calling chain returns too', () => {
    const result = simulate(rs('*nat\n:OUTPUT ACCEPT [0:0]\n:A - [0:0]\n:B - [0:0]\n-A OUTPUT -j A\n-A OUTPUT -j REDIRECT --to-ports 1\n-A A -g B\n-A A -j REDIRECT --to-ports 2\nCOMMIT\n'), p);
    assert.deepEqual([result.verdict.kind, result.verdict.kind === 'redirect' && result.verdict.port], ['redirect', 1]);
  });
  test('RETURN from a built-in chain applies its policy (DROP here)', () => {
    const result = simulate(rs('*filter\n:OUTPUT DROP [0:0]\n-A OUTPUT -p udp -j ACCEPT\n-A OUTPUT -j RETURN\nCOMMIT\n'), p);
    assert.equal(result.verdict.kind, 'drop');
  });
  test('marks set in mangle are seen by later rules; CONNMARK saves them', () => {
    const text = '*mangle\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -j MARK --set-xmark 0x7/0xffffffff\n-A OUTPUT -m mark --mark 0x7 -j CONNMARK --save-mark --nfmask 0xffffffff --ctmask 0xffffffff\nCOMMIT\n*nat\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -m mark ! --mark 0x7 -j REDIRECT --to-ports 9\nCOMMIT\n';
    const result = simulate(rs(text), p);
    assert.deepEqual([result.verdict.kind, result.final.mark, result.final.ctmark], ['pass', 7, 7]);
  });
  test('an unmodelled match is treated as no match, with a warning; an unmodelled terminal target gives "unknown"', () => {
    const text = '*nat\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -m statistic --mode random --probability 0.5 -j REDIRECT --to-ports 1\n-A OUTPUT -j DNAT --to-destination 10.9.9.9:80\nCOMMIT\n';
    const result = simulate(rs(text), p);
    assert.equal(result.verdict.kind, 'unknown');
    assert.ok(result.warnings.some((w) => /statistic/.test(w)));
  });
  test('interface wildcards and uid ranges', () => {
    const text = '*nat\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -o eth+ -m owner --uid-owner 100-200 -j REDIRECT --to-ports 5\nCOMMIT\n';
    assert.equal(simulate(rs(text), packet({ dst: '10.0.0.1', dport: 80, uid: 150 })).verdict.kind, 'redirect');
    assert.equal(simulate(rs(text), packet({ dst: '10.0.0.1', dport: 80, uid: 250 })).verdict.kind, 'pass');
  });
  test('the save-form tokenizer keeps quoted comments whole and they change nothing', () => {
    assert.deepEqual(tokenizeSpec('-m comment --comment "a b \\" c" -j RETURN'), ['-m', 'comment', '--comment', 'a b " c', '-j', 'RETURN']);
    assert.deepEqual(parseSaveSpec('-m comment --comment "x y" -j RETURN').matches, []);
  });
  test('nft bodies: tproxy, sets, marks and ct state', () => {
    assert.deepEqual(parseNftBody('meta l4proto tcp ip daddr != 127.0.0.1 tproxy ip to :15006 meta mark set 1337 counter accept').target, { kind: 'tproxy', port: 15006, mark: 1337 });
    const set = parseNftBody('oifname lo tcp dport != { 53, 15008 } skuid 1337 counter jump istio-in-redirect');
    assert.deepEqual(set.matches[1], { kind: 'dport', proto: 'tcp', ports: [53, 15008], negate: true });
    assert.deepEqual(set.target, { kind: 'jump', chain: 'ISTIO_IN_REDIRECT' });
    assert.equal(parseNftBody('ip6 saddr ::6 counter return').family, 'ipv6');
  });
});

/** Configs covering every rule shape meshcap writes. */
const CONFIGS: readonly string[][] = [
  DEFAULT,
  ['-m', 'TPROXY', '-b', '*', '-d', '15090', '-i', '*', '-x', '10.0.0.0/8', '-u', '1337', '-g', '1337', '--ipv6=true', '--drop-invalid', '-c', 'eth9', '-q', '9000', '-o', '9001'],
  ['-i', '10.0.0.0/8,2001:db8::/32', '-b', '8080,9090', '-u', '1337', '--redirect-dns', '--dns-servers-v4', '198.18.0.1', '--dns-servers-v6', '2001:db8::53', '--ipv6=true', '-k', 'kv0'],
  ['-m', 'TPROXY', '-b', '8080', '-i', '*', '--redirect-dns', '--capture-all-dns', '--ipv6=true', '-u', '1337,1338'],
];

function packetGrid(family: Family): Packet[] {
  const v4 = family === 'ipv4';
  const dsts = v4 ? ['10.0.0.5', '198.18.0.1', '127.0.0.1', '198.18.0.2', '203.0.113.9'] : ['2001:db8::1', '::1', '2001:db8::2', '2001:db9::1'];
  const out: Packet[] = [];
  for (const dst of dsts) {
    for (const dport of [53, 80, 8080, 9000, 9001, 15008, 15090]) {
      for (const proto of ['tcp', 'udp'] as const) {
        for (const uid of [0, 1337, 1338]) {
          const local = dst === '127.0.0.1' || dst === '::1' || dst === '198.18.0.2' || dst === '2001:db8::2';
          out.push(packet({ dst, dport, proto, uid, outIface: local ? 'lo' : 'eth0' }));
        }
        out.push(packet({ direction: 'inbound', src: v4 ? '198.18.0.1' : '2001:db8::1', dst, dport, proto }));
        out.push(packet({ direction: 'inbound', src: v4 ? '127.0.0.6' : '::6', dst, dport, proto, inIface: 'lo' }));
        out.push(packet({ direction: 'inbound', src: v4 ? '198.18.0.1' : '2001:db8::1', dst, dport, proto, inIface: 'kv0' }));
        out.push(packet({ direction: 'inbound', src: v4 ? '198.18.0.1' : '2001:db8::1', dst, dport, proto, state: 'established' }));
      }
    }
  }
  return out;
}


describe('the three rule sources agree on every packet of a grid', () => {
  for (const args of CONFIGS) {
    test(args.join(' '), () => {
      const cfg = config(args);
      const ruleset = buildRuleset(cfg);
      // What nft lists back after applying: inserts resolved, bodies in nft's normal form.
      const listing = desiredListing(nftTableOps(ruleset));
      let compared = 0;
      for (const family of cfg.ipv6.enabled ? (['ipv4', 'ipv6'] as const) : (['ipv4'] as const)) {
        const fromConfig = simRulesetFromConfig(ruleset, family);
        const fromSave = simRulesetFromSave(saveTextOf(fromConfig), family, 'save');
        const fromNft = simRulesetFromNft(listing, family, 'nft');
        for (const p of packetGrid(family)) {
          const want = simulate(fromConfig, p).verdict;
          assert.deepEqual(simulate(fromSave, p).verdict, want, `save form, ${JSON.stringify(p)}`);
          assert.deepEqual(simulate(fromNft, p).verdict, want, `nft, ${JSON.stringify(p)}`);
          compared++;
        }
      }
      assert.ok(compared > 100);
    });
  }
});
