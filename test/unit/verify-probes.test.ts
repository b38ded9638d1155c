/** Which connections verify makes for a config (pure). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCaptureConfig } from '../../src/config/parse.js';
import type { HostFacts } from '../../src/config/types.js';
import { type Identity, assignProbes, hasIpv4Route, identityFromStatus, keepInsidePod, planProbes } from '../../src/verify/probes.js';
import { conntrackOriginal } from '../../src/verify/run.js';

const facts: HostFacts = { interfaceAddresses: () => ['198.18.0.2'], resolvConf: () => '', lookupUid: () => undefined };
const plan = (argv: string[], env: Record<string, string> = {}) => planProbes(parseCaptureConfig(argv, env, facts));

test('wildcard capture: app is captured, proxy bypasses over lo to its own destination, inbound path via 127.0.0.6', () => {
  const { probes, skipped } = plan(['-i', '*', '-u', '1337']);
  assert.deepEqual(skipped, []);
  assert.deepEqual(probes.map((p) => [p.expect, p.uid, p.host, p.port]), [
    ['outbound-capture', 65534, '198.18.255.254', 80],
    // Over lo, on the tunnel port (which only the uid exemption keeps from ISTIO_REDIRECT): never leaves the pod.
    ['not-captured', 1337, '127.0.0.7', 15008],
    ['inbound-capture', 1337, '127.0.0.6', 15002],
  ]);
});

test('the bypass probe is skipped, with the reason, where something other than the proxy exemption would let it through', () => {
  const reason = (argv: string[], env: Record<string, string> = {}) => plan(argv, env).skipped.find((line) => line.startsWith('proxy bypass'));
  assert.match(reason(['-i', '*', '-o', '15008'])!, /tunnel port 15008 is excluded from outbound capture/);
  assert.match(reason(['-i', '10.0.0.0/8'])!, /would not be captured for anyone/);
  assert.match(reason(['-i', '*', '-c', 'lo'])!, /lo is an excluded interface/);
  assert.match(reason(['-i', '*', '-b', '*', '-m', 'TPROXY'])!, /TPROXY mode the proxy's own connections over lo are captured inbound/);
  assert.match(reason(['-i', '*'], { ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR: '127.0.0.0/8' })!, /loopback CIDR 127\.0\.0\.0\/8/);
  assert.match(reason(['-i', '*'], { ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE: '1337' })!, /owner groups .* exempt gid 1337/);
  assert.equal(reason(['-i', '127.0.0.0/8']), undefined, 'an include list holding 127.0.0.7 captures it');
  assert.ok(plan(['-i', '*', '-o', '15008']).probes.every((p) => p.expect !== 'not-captured'));
});

const ISTIO = ['-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '', '-b', '*', '-d', '15090,15021,15020'];
const config = (argv = ISTIO, env: Record<string, string> = {}) => parseCaptureConfig(argv, env, facts);
const status = (uid: number, gid: number, capEff: string) => `Name:\tnode\nUid:\t${uid}\t${uid}\t${uid}\t${uid}\nGid:\t${gid}\t${gid}\t${gid}\t${gid}\nCapEff:\t${capEff}\n`;

test('identity from /proc/self/status: istio-init (NET_ADMIN, NET_RAW) cannot switch users; with SETUID and SETGID it can', () => {
  // NET_ADMIN (12) + NET_RAW (13) = 0x3000; SETGID (6) + SETUID (7) = 0xc0.
  assert.deepEqual(identityFromStatus(status(0, 0, '0000000000003000'), { uid: 9, gid: 9 }), { uid: 0, gid: 0, canSwitchUser: false, canReadRules: true });
  assert.deepEqual(identityFromStatus(status(0, 0, '00000000000030c0'), { uid: 9, gid: 9 }), { uid: 0, gid: 0, canSwitchUser: true, canReadRules: true });
  assert.equal(identityFromStatus(status(0, 0, '0000000000003080'), { uid: 9, gid: 9 }).canSwitchUser, false, 'SETUID alone is not enough');
  assert.deepEqual(identityFromStatus(status(1337, 1337, '0000000000000000'), { uid: 9, gid: 9 }), { uid: 1337, gid: 1337, canSwitchUser: false, canReadRules: false });
  assert.deepEqual(identityFromStatus(undefined, { uid: 0, gid: 0 }), { uid: 0, gid: 0, canSwitchUser: true, canReadRules: true }, 'no procfs: root is assumed capable');
});

const root = (canSwitchUser: boolean): Identity => ({ uid: 0, gid: 0, canSwitchUser, canReadRules: true });

test("istio-init's capabilities: the outbound path is proven as this process, the proxy's probes are skipped naming CAP_SETUID/CAP_SETGID", () => {
  const c = config();
  const { runs, skipped } = assignProbes(c, planProbes(c).probes, root(false));
  assert.deepEqual(runs.map((r) => [r.probe.expect, r.probe.uid, r.switchUser]), [['outbound-capture', 0, false]]);
  assert.match(runs[0]!.probe.name, /^this process \(uid 0\) -> 198\.18\.255\.254:80 is captured to the proxy port 15001$/);
  assert.equal(skipped.length, 2);
  for (const line of skipped) assert.match(line, /^proxy \(uid 1337\) .*: not run, connecting as uid 1337 needs CAP_SETUID and CAP_SETGID/);
});

test('with CAP_SETUID and CAP_SETGID every probe runs as its own user', () => {
  const c = config();
  const { runs, skipped } = assignProbes(c, planProbes(c).probes, root(true));
  assert.deepEqual(skipped, []);
  assert.deepEqual(runs.map((r) => [r.probe.uid, r.switchUser]), [[65534, true], [1337, true], [1337, true]]);
});

test("istio-validation (uid 1337, no capabilities): the proxy's probes run as itself, the app probe is skipped", () => {
  const c = config();
  const me: Identity = { uid: 1337, gid: 1337, canSwitchUser: false, canReadRules: false };
  const { runs, skipped } = assignProbes(c, planProbes(c).probes, me);
  assert.deepEqual(runs.map((r) => [r.probe.expect, r.switchUser]), [['not-captured', false], ['inbound-capture', false]]);
  assert.match(skipped[0]!, /^app \(uid 65534\).*needs CAP_SETUID and CAP_SETGID/);
});

test('a process whose own traffic is exempt does not stand in for the app', () => {
  // Root is a proxy uid here, or its group is excluded, or only other groups are captured.
  for (const [argv, env] of [[[...ISTIO, '-u', '0'], {}], [ISTIO, { ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE: '0' }], [ISTIO, { ISTIO_OUTBOUND_OWNER_GROUPS: '202' }]] as const) {
    const c = config([...argv], env);
    const { runs } = assignProbes(c, planProbes(c).probes, root(false));
    assert.ok(runs.every((r) => r.probe.expect !== 'outbound-capture'), JSON.stringify(argv));
  }
});

test('routes from /proc/net/route: the default route covers everything, a /24 only its own', () => {
  const header = 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n';
  const subnet = 'eth0\t000012C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n'; // 198.18.0.0/24
  const defaultRoute = 'eth0\t00000000\t010012C6\t0003\t0\t0\t0\t00000000\t0\t0\t0\n';
  assert.equal(hasIpv4Route(header + subnet, '198.18.255.254'), false);
  assert.equal(hasIpv4Route(header + subnet, '198.18.0.77'), true);
  assert.equal(hasIpv4Route(header + subnet + defaultRoute, '198.18.255.254'), true);
  assert.equal(hasIpv4Route(header, '198.18.255.254'), false);
  assert.equal(hasIpv4Route(undefined, '198.18.255.254'), undefined);
});

test('the outbound probe runs only when it stays inside the pod: rules checked first, and a route to its address', () => {
  const c = config();
  const runs = assignProbes(c, planProbes(c).probes, root(true)).runs;
  const withDefault = 'Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\neth0\t00000000\t010012C6\t0003\t0\t0\t0\t00000000\t0\t0\t0\n';
  const outbound = (r: { runs: { probe: { expect: string } }[] }) => r.runs.some((run) => run.probe.expect === 'outbound-capture');
  assert.ok(outbound(keepInsidePod(runs, { rulesChecked: true, procNetRoute: withDefault })));
  assert.ok(outbound(keepInsidePod(runs, { rulesChecked: true, procNetRoute: undefined })), 'no route table visible: run it');
  const unchecked = keepInsidePod(runs, { rulesChecked: false, procNetRoute: withDefault });
  assert.ok(!outbound(unchecked));
  assert.match(unchecked.skipped[0]!, /rules could not be checked first/);
  const noRoute = keepInsidePod(runs, { rulesChecked: true, procNetRoute: withDefault.split('\n')[0] });
  assert.match(noRoute.skipped[0]!, /no route to 198\.18\.255\.254/);
  assert.equal(noRoute.runs.length, 2, 'the probes over lo still run');
});

test('conntrack: the original destination is read from the entry of this very connection', () => {
  const entry = (sport: number) =>
    `ipv4     2 tcp      6 117 TIME_WAIT src=198.18.0.2 dst=198.18.255.254 sport=${sport} dport=80 src=127.0.0.1 dst=198.18.0.2 sport=15001 dport=${sport} [ASSURED] mark=0 zone=0 use=2\n`;
  const probe = { host: '198.18.255.254', port: 80 };
  assert.equal(conntrackOriginal(entry(40000), probe, 40000, 15001), '198.18.255.254:80');
  assert.equal(conntrackOriginal(entry(40001), probe, 40000, 15001), undefined, "another connection's entry proves nothing");
  assert.equal(conntrackOriginal(entry(40000), probe, 40000, 15006), undefined, 'the reply must come from the port it landed on');
  assert.equal(conntrackOriginal(undefined, probe, 40000, 15001), undefined);
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
