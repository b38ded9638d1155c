/** The pure preflight decisions: capabilities, kernel support evidence, IPv6 state. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCaptureConfig } from '../../src/config/parse.js';
import type { HostFacts } from '../../src/config/types.js';
import { CAP_NET_ADMIN, CAP_NET_RAW, capabilitiesNeeded, checkKernel, missingCapabilities, effectiveCapabilities, hasCapability, ipv6Disabled, kernelNeeds, supports } from '../../src/preflight/checks.js';

const facts: HostFacts = { interfaceAddresses: () => ['198.18.0.2'], resolvConf: () => 'nameserver 198.18.0.53\n', lookupUid: () => undefined };
const config = (...argv: string[]) => parseCaptureConfig(argv, {}, facts);

test('effective capabilities are read from /proc/self/status', () => {
  const root = effectiveCapabilities('Name:\tnode\nCapEff:\t000001ffffffffff\n')!;
  assert.ok(hasCapability(root, CAP_NET_ADMIN) && hasCapability(root, CAP_NET_RAW));
  const dropped = effectiveCapabilities('CapEff:\t000001ffffffcfff\n')!;
  assert.equal(hasCapability(dropped, CAP_NET_ADMIN), false);
  assert.equal(hasCapability(dropped, CAP_NET_RAW), false);
  assert.equal(effectiveCapabilities('no such line'), undefined);
});

test('capabilities per writer, as measured: NET_ADMIN for iptables-nft and nftables, NET_RAW as well for iptables-legacy', () => {
  const netAdminOnly = 1n << BigInt(CAP_NET_ADMIN);
  assert.deepEqual(missingCapabilities(netAdminOnly, 'nft'), []);
  assert.deepEqual(missingCapabilities(netAdminOnly, 'nftables'), []);
  assert.deepEqual(missingCapabilities(netAdminOnly, undefined), [], 'before detection only what every writer needs');
  assert.deepEqual(missingCapabilities(netAdminOnly, 'legacy'), ['CAP_NET_RAW']);
  assert.deepEqual(missingCapabilities(1n << BigInt(CAP_NET_RAW), 'nft'), ['CAP_NET_ADMIN']);
  assert.deepEqual(missingCapabilities(0n, 'legacy'), ['CAP_NET_ADMIN', 'CAP_NET_RAW']);
  assert.deepEqual(capabilitiesNeeded('legacy').map((c) => c.name), ['CAP_NET_ADMIN', 'CAP_NET_RAW']);
});

test('the needs follow the config: raw/CT/multiport only with DNS, mangle/TPROXY only in TPROXY mode', () => {
  const names = (c: ReturnType<typeof config>) => kernelNeeds(c).map((n) => n.extension ?? n.table);
  assert.deepEqual(names(config('-i', '*')), ['nat', 'REDIRECT', 'owner', 'tcp']);
  assert.ok(names(config('--redirect-dns')).includes('CT'));
  assert.ok(names(config('--redirect-dns')).includes('raw'));
  const tproxy = names(config('-m', 'TPROXY', '-b', '*'));
  for (const name of ['mangle', 'TPROXY', 'MARK', 'CONNMARK', 'mark', 'connmark', 'conntrack']) assert.ok(tproxy.includes(name), name);
  assert.ok(!names(config('-i', '*')).includes('TPROXY'));
});

test('support: loaded extension is proof; the kernel config decides yes or no; otherwise unknown', () => {
  const [, redirect] = kernelNeeds(config());
  assert.equal(supports(redirect!, { loadedTargets: 'MASQUERADE\nREDIRECT\n' }), 'yes');
  assert.equal(supports(redirect!, { kernelConfig: () => 'CONFIG_NETFILTER_XT_TARGET_REDIRECT=m\n' }), 'yes');
  assert.equal(supports(redirect!, { kernelConfig: () => '# CONFIG_NETFILTER_XT_TARGET_REDIRECT is not set\n' }), 'no');
  assert.equal(supports(redirect!, { modulesDep: 'kernel/net/netfilter/xt_REDIRECT.ko: x_tables.ko\n' }), 'yes');
  assert.equal(supports(redirect!, {}), 'unknown');
  let reads = 0;
  assert.equal(supports(redirect!, { loadedTargets: 'REDIRECT\n', kernelConfig: () => (reads++, '') }), 'yes');
  assert.equal(reads, 0, 'the kernel config is not read when the loaded list answers');
});

test('checkKernel reports what is missing for TPROXY on a kernel without xt_TPROXY', () => {
  const kernel = 'CONFIG_IP_NF_NAT=y\nCONFIG_NETFILTER_XT_TARGET_REDIRECT=y\nCONFIG_NETFILTER_XT_MATCH_OWNER=y\nCONFIG_NETFILTER_XTABLES=y\nCONFIG_IP_NF_MANGLE=y\nCONFIG_NETFILTER_XT_MATCH_CONNTRACK=y\nCONFIG_NETFILTER_XT_MARK=y\nCONFIG_NETFILTER_XT_CONNMARK=y\n';
  const report = checkKernel(config('-m', 'TPROXY', '-b', '*'), { kernelConfig: () => kernel });
  assert.deepEqual(report.missing.map((n) => n.module), ['xt_TPROXY']);
  assert.deepEqual(checkKernel(config('-i', '*'), { kernelConfig: () => kernel }).missing, []);
});

test('IPv6 is disabled by the sysctl or by its absence', () => {
  assert.equal(ipv6Disabled('1\n', ''), true);
  assert.equal(ipv6Disabled('0\n', '00000000000000000000000000000001 01 80 10 80       lo\n'), false);
  assert.equal(ipv6Disabled(undefined, undefined), true);
});
