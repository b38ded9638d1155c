/**
 * src/net/ip.ts: strict parsing (what Go's netip refuses is refused) and
 * netip-identical text output, which Istio's goldens are made of.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  cidrContains,
  cidrIsLoopback,
  formatCidr,
  formatIp,
  isLinkLocalUnicast,
  isLoopback,
  maskCidr,
  parseCidr,
  parseIp,
  parseIpv4,
  parseIpv6,
  unmap,
  type IpAddress,
} from '../../src/net/ip.js';

function ip(text: string): IpAddress {
  const parsed = parseIp(text);
  assert.ok(parsed, `${text} should parse`);
  return parsed;
}

const roundTrip = (text: string) => formatIp(ip(text));

describe('IPv4 parsing', () => {
  test('valid addresses', () => {
    assert.deepEqual(parseIpv4('10.1.2.3'), { family: 4, bytes: [10, 1, 2, 3] });
    assert.deepEqual(parseIpv4('0.0.0.0'), { family: 4, bytes: [0, 0, 0, 0] });
    assert.deepEqual(parseIpv4('255.255.255.255'), { family: 4, bytes: [255, 255, 255, 255] });
  });

  test('refused: leading zeros, out of range, wrong shape, junk', () => {
    for (const text of ['010.0.0.1', '1.02.3.4', '00.0.0.0', '256.0.0.0', '300.1.1.1', '1.2.3', '1.2.3.4.5', '1.2.3.4.', '.1.2.3',
      '1..2.3', '', ' 1.2.3.4', '1.2.3.4 ', '1.2.3.-4', '0x1.2.3.4', '1.2.3.4/8', '1e2.0.0.1', '+1.2.3.4']) {
      assert.equal(parseIpv4(text), undefined, JSON.stringify(text));
      assert.equal(parseIp(text), undefined, JSON.stringify(text));
    }
  });
});

describe('IPv6 parsing', () => {
  test('forms with and without ::', () => {
    assert.deepEqual(ip('::').bytes, new Array(16).fill(0));
    assert.deepEqual(ip('::1').bytes, [...new Array(15).fill(0), 1]);
    assert.deepEqual(ip('1::').bytes, [0, 1, ...new Array(14).fill(0)]);
    assert.deepEqual(ip('1:2:3:4:5:6:7:8').bytes, [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8]);
    assert.deepEqual(ip('1:2:3:4:5:6:7::').bytes, [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 0]);
    assert.deepEqual(ip('::2:3:4:5:6:7:8').bytes, [0, 0, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8]);
    assert.deepEqual(ip('ABCD:ef01::').bytes.slice(0, 4), [0xab, 0xcd, 0xef, 0x01]);
    assert.deepEqual(ip('0001:0db8::').bytes.slice(0, 4), [0, 1, 0x0d, 0xb8], 'up to four hex digits per group');
  });

  test('embedded IPv4 tail', () => {
    assert.deepEqual(ip('::ffff:1.2.3.4').bytes, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4]);
    assert.deepEqual(ip('1:2:3:4:5:6:1.2.3.4').bytes.slice(12), [1, 2, 3, 4]);
    assert.equal(ip('::127.0.0.53').family, 6);
  });

  test('refused', () => {
    for (const text of ['', ':', ':::', '1:::2', '1::2::3', ':1::', '::1:', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8::',
      '::1:2:3:4:5:6:7:8', '12345::', 'g::', '1.2.3.4::', '::1.2.3.4:5', '::1.2.3', '::01.2.3.4', 'fe80::1%eth0', '2001:db8::/32',
      ' ::1', '::1 ', '[::1]', '1:2:3:4:5:6:7:1.2.3.4']) {
      assert.equal(parseIpv6(text), undefined, JSON.stringify(text));
      assert.equal(parseIp(text), undefined, JSON.stringify(text));
    }
  });
});

describe('formatting as Go netip.Addr.String() (RFC 5952)', () => {
  const cases: [string, string][] = [
    ['2001:DB8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8:0:0:0:0:2:1', '2001:db8::2:1'],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['2001:db8:1:0:0:1:0:0', '2001:db8:1::1:0:0'],
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
    ['::2:3:4:5:6:7:8', '0:2:3:4:5:6:7:8'],
    ['0:0:0:0:0:0:0:0', '::'],
    ['::', '::'],
    ['::1', '::1'],
    ['1::', '1::'],
    ['fe80::', 'fe80::'],
    ['::ffff:1.2.3.4', '::ffff:1.2.3.4'],
    ['::FFFF:0102:0304', '::ffff:1.2.3.4'],
    ['::ffff:0:0', '::ffff:0.0.0.0'],
    ['::127.0.0.53', '::7f00:35'],
    ['::1.2.3.4', '::102:304'],
    ['64:ff9b::1.2.3.4', '64:ff9b::102:304'],
    ['::fffe:1.2.3.4', '::fffe:102:304'],
    ['1:0:0:2::3', '1:0:0:2::3'],
    ['10.0.0.1', '10.0.0.1'],
  ];
  for (const [input, want] of cases) {
    test(`${input} -> ${want}`, () => assert.equal(roundTrip(input), want));
  }
});

describe('prefixes', () => {
  test('prefix lengths', () => {
    assert.deepEqual(parseCidr('10.0.0.0/8'), { addr: ip('10.0.0.0'), prefix: 8 });
    assert.equal(parseCidr('0.0.0.0/0')?.prefix, 0);
    assert.equal(parseCidr('1.2.3.4/32')?.prefix, 32);
    assert.equal(parseCidr('::/0')?.prefix, 0);
    assert.equal(parseCidr('2001:db8::/128')?.prefix, 128);
    for (const text of ['10.0.0.0/33', '2001:db8::/129', '10.0.0.0/08', '10.0.0.0/', '10.0.0.0', '/8', '10.0.0.0/-1', '10.0.0.0/8/8',
      '10.0.0.0/ 8', '300.1.1.1/8', '010.0.0.0/8', 'fe80::1%eth0/64', '10.0.0.0/1e1', '::ffff:1.2.3.4/129']) {
      assert.equal(parseCidr(text), undefined, JSON.stringify(text));
    }
  });

  test('host bits are kept as written; formatCidr uses the netip text of the address', () => {
    assert.equal(formatCidr(parseCidr('10.0.0.1/8')!), '10.0.0.1/8');
    assert.equal(formatCidr(parseCidr('2001:DB8:0:0::/32')!), '2001:db8::/32');
    assert.equal(formatCidr(parseCidr('::ffff:1.2.3.4/104')!), '::ffff:1.2.3.4/104');
  });

  test('maskCidr clears host bits, including inside a byte', () => {
    const masked = (text: string) => formatCidr(maskCidr(parseCidr(text)!));
    assert.equal(masked('10.1.2.3/8'), '10.0.0.0/8');
    assert.equal(masked('10.255.255.255/13'), '10.248.0.0/13');
    assert.equal(masked('192.168.1.77/32'), '192.168.1.77/32');
    assert.equal(masked('192.168.1.77/0'), '0.0.0.0/0');
    assert.equal(masked('2001:db8:abcd:1234::1/48'), '2001:db8:abcd::/48');
    assert.equal(masked('2001:db8::ffff/121'), '2001:db8::ff80/121');
    assert.equal(masked('::1/127'), '::/127');
  });

  test('cidrContains', () => {
    const contains = (cidr: string, addr: string) => cidrContains(parseCidr(cidr)!, ip(addr));
    assert.equal(contains('10.0.0.0/8', '10.255.255.255'), true);
    assert.equal(contains('10.0.0.0/8', '11.0.0.0'), false);
    assert.equal(contains('10.0.0.1/8', '10.9.9.9'), true, 'host bits in the prefix do not matter');
    assert.equal(contains('10.248.0.0/13', '10.255.0.1'), true);
    assert.equal(contains('10.248.0.0/13', '10.247.255.255'), false);
    assert.equal(contains('0.0.0.0/0', '203.0.113.9'), true);
    assert.equal(contains('0.0.0.0/0', '::1'), false, 'families never mix');
    assert.equal(contains('::/0', '10.0.0.1'), false, 'families never mix');
    assert.equal(contains('2001:db8::/32', '2001:db8:ffff::1'), true);
    assert.equal(contains('2001:db8::/32', '2001:db9::1'), false);
    assert.equal(contains('1.2.3.4/32', '1.2.3.4'), true);
    assert.equal(contains('1.2.3.4/32', '1.2.3.5'), false);
  });
});

describe('address classes', () => {
  test('loopback', () => {
    assert.equal(isLoopback(ip('127.0.0.1')), true);
    assert.equal(isLoopback(ip('127.255.0.9')), true);
    assert.equal(isLoopback(ip('128.0.0.1')), false);
    assert.equal(isLoopback(ip('::1')), true);
    assert.equal(isLoopback(ip('::2')), false);
    assert.equal(isLoopback(ip('::')), false);
    assert.equal(isLoopback(ip('::ffff:127.0.0.1')), false, 'mapped loopback is loopback only after unmap');
    assert.equal(isLoopback(unmap(ip('::ffff:127.0.0.1'))), true);
    assert.equal(cidrIsLoopback(parseCidr('127.1.2.3/32')!), true);
    assert.equal(cidrIsLoopback(parseCidr('10.0.0.0/8')!), false);
  });

  test('link-local unicast', () => {
    assert.equal(isLinkLocalUnicast(ip('169.254.0.1')), true);
    assert.equal(isLinkLocalUnicast(ip('169.253.0.1')), false);
    assert.equal(isLinkLocalUnicast(ip('fe80::1')), true);
    assert.equal(isLinkLocalUnicast(ip('febf:ffff::1')), true);
    assert.equal(isLinkLocalUnicast(ip('fec0::1')), false);
    assert.equal(isLinkLocalUnicast(ip('ff02::1')), false);
  });

  test('unmap', () => {
    assert.deepEqual(unmap(ip('::ffff:10.0.0.5')), { family: 4, bytes: [10, 0, 0, 5] });
    assert.deepEqual(unmap(ip('::10.0.0.5')), ip('::10.0.0.5'), 'IPv4-compatible is not IPv4-mapped');
    assert.deepEqual(unmap(ip('10.0.0.5')), ip('10.0.0.5'));
  });
});
