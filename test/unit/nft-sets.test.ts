/** --cidr-sets on native nftables: which rules become sets, what the sets hold, and how their listing reads back. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseCaptureConfig } from '../../src/config/parse.js';
import type { HostFacts } from '../../src/config/types.js';
import { nftTableOps, renderNftTransaction } from '../../src/render/nftables.js';
import { buildRuleset } from '../../src/rules/build.js';
import type { Ruleset } from '../../src/rules/model.js';
import { parseNftListing } from '../../src/state/nft-listing.js';
import { desiredListing, diffListings } from '../../src/state/nft-view.js';

const FACTS: HostFacts = { interfaceAddresses: () => ['10.244.0.7', 'fd00::7'], resolvConf: () => undefined, lookupUid: () => undefined };
const ISTIO_INIT = ['-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-b', '*', '-d', '15090,15021,15020'];
const build = (argv: readonly string[]): Ruleset => buildRuleset(parseCaptureConfig([...ISTIO_INIT, ...argv], {}, FACTS));
const natLines = (ruleset: Ruleset) => renderNftTransaction(ruleset).filter((l) => l.includes(' istio-proxy-nat '));

describe('--cidr-sets', () => {
  test('without the flag nothing changes: no set, one rule per excluded CIDR (Istio layout)', () => {
    const plain = build(['-x', '10.0.0.0/8,192.168.0.0/16']);
    const withFlagOff = build(['-x', '10.0.0.0/8,192.168.0.0/16', '--cidr-sets=false']);
    assert.deepEqual(renderNftTransaction(withFlagOff), renderNftTransaction(plain));
    assert.ok(!natLines(plain).some((l) => l.includes(' set ') || l.includes('@')));
    assert.ok(natLines(plain).includes('add rule inet istio-proxy-nat istio-output ip daddr 10.0.0.0/8 counter return'));
  });

  test('excluded CIDRs become one interval set per family, nested prefixes dropped, one lookup each, though the families interleave', () => {
    const lines = natLines(build(['--cidr-sets', '--ipv6=true', '-x', '10.1.0.0/16,10.0.0.0/8,192.168.1.7/32,2001:db8::/32,2001:db8:1::/48']));
    assert.ok(lines.includes('add set inet istio-proxy-nat istio-exclude-v4 { type ipv4_addr ; flags interval ; }'));
    assert.ok(lines.includes('flush set inet istio-proxy-nat istio-exclude-v4'));
    // localhost's RETURN sits right before the excludes: the same verdict, so it joins the run.
    assert.ok(lines.includes('add element inet istio-proxy-nat istio-exclude-v4 { 10.0.0.0/8, 127.0.0.1/32, 192.168.1.7/32 }'));
    assert.ok(lines.includes('add element inet istio-proxy-nat istio-exclude-v6 { ::1/128, 2001:db8::/32 }'));
    const output = lines.filter((l) => l.startsWith('add rule inet istio-proxy-nat istio-output '));
    assert.equal(output.filter((l) => l.includes('ip daddr @istio-exclude-v4 counter return')).length, 1);
    assert.equal(output.filter((l) => l.includes('ip6 daddr @istio-exclude-v6 counter return')).length, 1);
    assert.ok(!output.some((l) => / ip6? daddr (10\.|2001:db8)/.test(l)), 'no linear exclude rule is left');
    // The final capture jump still comes after the lookups.
    assert.ok(output.findIndex((l) => l.includes('@istio-exclude-v4')) < output.findIndex((l) => l.endsWith('jump istio-redirect')));
  });

  test('excluded outbound ports become one set with a tcp and a udp lookup, in place', () => {
    const lines = natLines(build(['--cidr-sets', '-o', '8081,8082,8081']));
    assert.ok(lines.includes('add set inet istio-proxy-nat istio-exclude-ports { type inet_service ; }'));
    assert.ok(lines.includes('add element inet istio-proxy-nat istio-exclude-ports { 8081, 8082 }'));
    const output = lines.filter((l) => l.startsWith('add rule inet istio-proxy-nat istio-output '));
    assert.deepEqual(output.slice(0, 2), [
      'add rule inet istio-proxy-nat istio-output tcp dport @istio-exclude-ports counter return',
      'add rule inet istio-proxy-nat istio-output udp dport @istio-exclude-ports counter return',
    ]);
  });

  test('a single entry stays a rule', () => {
    const lines = natLines(build(['--cidr-sets', '-o', '8081']));
    assert.ok(!lines.some((l) => l.includes('istio-exclude-ports')));
    assert.ok(lines.includes('add rule inet istio-proxy-nat istio-output tcp dport 8081 counter return'));
  });

  test("nft's listing of the sets (its own order, elements over several lines) reads back equal to what was written", () => {
    const ops = nftTableOps(build(['--cidr-sets', '-x', '10.1.0.0/24,10.0.0.0/24,192.0.2.7/32', '-o', '8081,8082']));
    const nat = ops.find((o) => o.table === 'nat')!;
    const chains = [...desiredListing(ops).get('istio-proxy-nat')!.entries()].filter(([name]) => !name.startsWith('set '));
    const listing = [
      'table inet istio-proxy-nat {',
      '\tset istio-exclude-ports {',
      '\t\ttype inet_service',
      '\t\telements = { 8082, 8081 }',
      '\t}',
      '',
      '\tset istio-exclude-v4 {',
      '\t\ttype ipv4_addr',
      '\t\tflags interval',
      '\t\telements = { 10.0.0.0/24, 10.1.0.0/24,',
      '\t\t\t     127.0.0.1, 192.0.2.7 }',
      '\t}',
      ...chains.flatMap(([name, chain]) => [
        `\tchain ${name} {`,
        ...(chain.base ? [`\t\t${chain.base.replace(/priority (\S+)/, 'priority $1; policy accept;')}`] : []),
        ...chain.rules.map((r) => `\t\t${r.replace(' counter ', ' counter packets 3 bytes 180 ')}`),
        '\t}',
      ]),
      '}',
    ].join('\n');
    const live = parseNftListing(listing);
    assert.deepEqual(nat.sets.map((s) => s.name), ['istio-exclude-ports', 'istio-exclude-v4']);
    const desired = new Map([...desiredListing(ops)].filter(([name]) => name === 'istio-proxy-nat'));
    assert.deepEqual(diffListings(desired, live), []);
    // A missing element is a difference.
    const short = parseNftListing(listing.replace(', 192.0.2.7 }', ' }'));
    assert.notDeepEqual(diffListings(desired, short), []);
  });
});
