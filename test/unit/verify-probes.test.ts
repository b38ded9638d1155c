/** Which connections verify makes for a config (pure). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCaptureConfig } from '../../src/config/parse.js';
import type { HostFacts } from '../../src/config/types.js';
import { planProbes } from '../../src/verify/probes.js';

const facts: HostFacts = { interfaceAddresses: () => ['198.18.0.2'], resolvConf: () => '', lookupUid: () => undefined };
const plan = (argv: string[], env: Record<string, string> = {}) => planProbes(parseCaptureConfig(argv, env, facts));

test('wildcard capture: app is captured, proxy bypasses, inbound path via 127.0.0.6', () => {
  const { probes, skipped } = plan(['-i', '*', '-u', '1337']);
  assert.deepEqual(skipped, []);
  assert.deepEqual(probes.map((p) => [p.expect, p.uid, p.host, p.port]), [
    ['outbound-capture', 65534, '198.18.255.254', 80],
    ['not-captured', 1337, '198.18.255.254', 80],
    ['inbound-capture', 1337, '127.0.0.6', 15002],
  ]);
});

test('the probe address avoids excluded CIDRs and excluded ports, and lies inside included CIDRs', () => {
  assert.equal(plan(['-i', '*', '-x', '198.18.0.0/15']).probes[0]!.host, '203.0.113.254');
  assert.equal(plan(['-i', '*', '-o', '80,8080']).probes[0]!.port, 443);
  assert.equal(plan(['-i', '10.96.0.0/12']).probes[0]!.host, '10.96.0.1');
  assert.equal(plan(['-i', '10.96.0.5/32']).probes[0]!.host, '10.96.0.5');
  const portsOnly = plan(['-i', '', '-q', '3306']).probes[0]!;
  assert.equal(portsOnly.port, 3306);
});

test('nothing captured outbound: the outbound probes are skipped with the reason', () => {
  const { probes, skipped } = plan(['-i', '']);
  assert.deepEqual(probes.map((p) => p.expect), ['inbound-capture']);
  assert.match(skipped[0]!, /captures no IPv4 outbound destination/);
});

test('the app user is never one of the proxy uids or gids; owner groups pick an included gid', () => {
  const { probes } = plan(['-i', '*', '-u', '65534,1337', '-g', '65533']);
  assert.ok(probes[0]!.uid !== 65534 && probes[0]!.uid !== 1337 && probes[0]!.uid !== 65533);
  const only = plan(['-i', '*'], { ISTIO_OUTBOUND_OWNER_GROUPS: '202,java' });
  assert.equal(only.probes[0]!.gid, 202);
});
