/**
 * parseCaptureConfig with fake host facts: defaults, Istio's precedence,
 * IPv6 auto-detection and DNS server discovery, without touching the host.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CAPTURE_FLAGS } from '../../src/config/flags.js';
import { ConfigError, UsageError, parseCaptureConfig, type Env } from '../../src/config/parse.js';
import type { CaptureConfig, HostFacts } from '../../src/config/types.js';
import { formatCidr } from '../../src/net/ip.js';

interface FakeHost {
  readonly facts: HostFacts;
  /** Names passed to lookupUid, in order. */
  readonly lookups: string[];
  /** How many times resolv.conf was read. */
  readonly resolvReads: { count: number };
}

function fakeHost(
  options: { addresses?: readonly string[]; resolvConf?: string; users?: Record<string, number> } = {},
): FakeHost {
  const lookups: string[] = [];
  const resolvReads = { count: 0 };
  return {
    lookups,
    resolvReads,
    facts: {
      interfaceAddresses: () => options.addresses ?? ['127.0.0.1', '::1', '10.244.0.7'],
      resolvConf: () => {
        resolvReads.count++;
        return options.resolvConf;
      },
      lookupUid: (name) => {
        lookups.push(name);
        return options.users?.[name];
      },
    },
  };
}

const parse = (argv: readonly string[], env: Env = {}, host: FakeHost = fakeHost()): CaptureConfig =>
  parseCaptureConfig(argv, env, host.facts);

describe('defaults', () => {
  test('no flags, no env: Istio defaults', () => {
    const host = fakeHost();
    const c = parse([], {}, host);
    assert.equal(c.proxyPort, 15001);
    assert.equal(c.inboundCapturePort, 15006);
    assert.equal(c.inboundTunnelPort, 15008);
    assert.deepEqual(c.proxyUids, ['1337']);
    assert.deepEqual(c.proxyGids, ['1337']);
    assert.deepEqual(host.lookups, ['istio-proxy'], 'the proxy uid defaults to the uid of ENVOY_USER (istio-proxy)');
    assert.equal(c.mode, 'REDIRECT');
    assert.equal(c.tproxyMark, 1337);
    assert.equal(c.tproxyRouteTable, 133);
    assert.deepEqual(c.ownerGroups, { kind: 'allExcept', groups: [] });
    assert.equal(c.ipv4LoopbackCidr, '127.0.0.1/32');
    assert.equal(c.backend, 'auto');
    assert.equal(c.lockTimeoutSeconds, 30);
    assert.equal(c.probePort, 15002);
    assert.equal(c.probeTimeoutMs, 5000);
    assert.deepEqual(c.inboundPorts, { kind: 'none' });
    assert.deepEqual(c.outboundCidrs, { wildcard: false, v4: [], v6: [], hasLoopback: false });
    assert.deepEqual(c.outboundCidrsExclude, { v4: [], v6: [] });
    assert.deepEqual(c.outboundPorts, []);
    assert.deepEqual(c.outboundPortsExclude, []);
    assert.deepEqual(c.excludeInterfaces, []);
    assert.deepEqual(c.rerouteInterfaces, []);
    assert.deepEqual(c.dns, { requested: false, effective: false, captureAll: false, serversV4: [], serversV6: [] });
    for (const flag of ['dropInvalid', 'dualStack', 'dryRun', 'skipRuleApply', 'runValidation', 'cleanupOnly', 'forceApply', 'nativeNftables', 'cniMode', 'logJson', 'debug'] as const) {
      assert.equal(c[flag], false, flag);
    }
    assert.equal(host.resolvReads.count, 0, 'resolv.conf is read only for DNS capture');
  });

  test('proxy uid from the ENVOY_USER lookup, gid defaults to it', () => {
    const host = fakeHost({ users: { 'istio-proxy': 101 } });
    const c = parse([], {}, host);
    assert.deepEqual(c.proxyUids, ['101']);
    assert.deepEqual(c.proxyGids, ['101']);
  });

  test('ENVOY_USER names the user looked up; unknown user falls back to 1337', () => {
    const host = fakeHost({ users: { envoy: 4242, 'istio-proxy': 101 } });
    assert.deepEqual(parse([], { ENVOY_USER: 'envoy' }, host).proxyUids, ['4242']);
    assert.deepEqual(host.lookups, ['envoy']);
    assert.deepEqual(parse([], { ENVOY_USER: 'nobody-here' }, host).proxyUids, ['1337']);
    assert.deepEqual(parse([], { ENVOY_USER: '' }, host).proxyUids, ['101'], 'empty ENVOY_USER means istio-proxy');
  });

  test('an explicit uid list skips the lookup; gids default to the whole uid list', () => {
    const host = fakeHost({ users: { 'istio-proxy': 101 } });
    const c = parse(['-u', '3,4'], {}, host);
    assert.deepEqual(c.proxyUids, ['3', '4']);
    assert.deepEqual(c.proxyGids, ['3', '4']);
    assert.deepEqual(host.lookups, []);
    assert.deepEqual(parse(['-u', '3,4', '-g', '1,2']).proxyGids, ['1', '2']);
    assert.deepEqual(parse(['-u', '', '-g', '']).proxyGids, ['1337'], 'empty lists mean the defaults');
  });

  test('-p has no env var: ENVOY_PORT is ignored, as in Istio', () => {
    assert.equal(parse([], { ENVOY_PORT: '9999' }).proxyPort, 15001);
  });
});

describe('precedence: command line > additional env > primary env > default', () => {
  const twoEnvFlags = [
    { long: 'redirect-dns', primary: 'REDIRECT_DNS', additional: 'ISTIO_META_DNS_CAPTURE', read: (c: CaptureConfig) => c.dns.requested },
    { long: 'drop-invalid', primary: 'DROP_INVALID', additional: 'INVALID_DROP', read: (c: CaptureConfig) => c.dropInvalid },
    { long: 'dual-stack', primary: 'DUAL_STACK', additional: 'ISTIO_DUAL_STACK', read: (c: CaptureConfig) => c.dualStack },
  ];

  test('these are exactly the flags with two env vars', () => {
    const withTwo = CAPTURE_FLAGS.filter((f) => f.additionalEnv).map((f) => [f.long, f.env, f.additionalEnv]);
    assert.deepEqual(withTwo, twoEnvFlags.map((f) => [f.long, f.primary, f.additional]));
  });

  for (const flag of twoEnvFlags) {
    test(`--${flag.long} (${flag.primary}, then ${flag.additional})`, () => {
      // Explicit (empty) DNS lists so that DNS capture does not need a resolv.conf.
      const value = (argv: string[], env: Env) => flag.read(parse([...argv, '--dns-servers-v4=', '--dns-servers-v6='], env));
      assert.equal(value([], {}), false, 'default');
      assert.equal(value([], { [flag.primary]: 'true' }), true, 'primary env');
      assert.equal(value([], { [flag.additional]: 'true' }), true, 'additional env');
      assert.equal(value([], { [flag.primary]: 'false', [flag.additional]: 'true' }), true, 'additional overrides primary');
      assert.equal(value([], { [flag.primary]: 'true', [flag.additional]: 'false' }), false, 'additional overrides primary');
      assert.equal(value([], { [flag.primary]: 'true', [flag.additional]: '' }), true, 'an empty env var is ignored');
      assert.equal(value([], { [flag.primary]: 'T', [flag.additional]: '0' }), false, 'Go ParseBool spellings');
      assert.equal(value([`--${flag.long}=false`], { [flag.primary]: 'true', [flag.additional]: 'true' }), false, 'CLI beats both');
      assert.equal(value([`--${flag.long}`], { [flag.primary]: 'false', [flag.additional]: 'false' }), true, 'CLI beats both');
      assert.throws(() => value([], { [flag.additional]: 'yes' }), (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.equal(error.source, `from env ${flag.additional}`);
        return true;
      });
    });
  }

  test('single-env string flags: CLI > env > default', () => {
    assert.equal(parse([], { INBOUND_CAPTURE_PORT: '16006' }).inboundCapturePort, 16006);
    assert.equal(parse(['-z', '17006'], { INBOUND_CAPTURE_PORT: '16006' }).inboundCapturePort, 17006);
    assert.equal(parse(['--inbound-tunnel-port=18008'], { INBOUND_TUNNEL_PORT: '16008' }).inboundTunnelPort, 18008);
    assert.deepEqual(parse([], { ISTIO_INBOUND_PORTS: '80,443' }).inboundPorts, { kind: 'list', ports: [80, 443] });
    assert.deepEqual(parse(['-b', ''], { ISTIO_INBOUND_PORTS: '80,443' }).inboundPorts, { kind: 'none' }, 'an explicit empty flag beats env');
    assert.equal(parse([], { ISTIO_INBOUND_INTERCEPTION_MODE: 'TPROXY' }).mode, 'TPROXY');
    assert.equal(parse(['-m', 'REDIRECT'], { ISTIO_INBOUND_INTERCEPTION_MODE: 'TPROXY' }).mode, 'REDIRECT');
    assert.deepEqual(parse([], { PROXY_UID: '5' }).proxyUids, ['5']);
    assert.equal(parse([], { ISTIO_INBOUND_TPROXY_MARK: '0x539' }).tproxyMark, 1337);
    assert.equal(parse([], { MESHCAP_LOCK_TIMEOUT: '5' }).lockTimeoutSeconds, 5);
    assert.equal(parse(['--lock-timeout', '7'], { MESHCAP_LOCK_TIMEOUT: '5' }).lockTimeoutSeconds, 7);
  });

  test('an invalid env value is reported even when the CLI would not have overridden it, and names the env var', () => {
    assert.throws(() => parse([], { INBOUND_CAPTURE_PORT: '0' }), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.subject, '--inbound-capture-port (-z, env INBOUND_CAPTURE_PORT)');
      assert.equal(error.source, 'from env INBOUND_CAPTURE_PORT');
      assert.equal(error.value, '0');
      return true;
    });
  });

  test('the CLI value replaces an invalid string env value', () => {
    assert.equal(parse(['-z', '15006'], { INBOUND_CAPTURE_PORT: 'bad' }).inboundCapturePort, 15006);
  });

  test('the last occurrence of a flag wins (pflag)', () => {
    assert.equal(parse(['-p', '1', '--envoy-port', '2', '-p=3']).proxyPort, 3);
  });
});

describe('IPv6 auto-detection, as Istio decides it', () => {
  const ipv6 = (addresses: readonly string[], argv: string[] = [], env: Env = {}) => parse(argv, env, fakeHost({ addresses })).ipv6;

  test('the first non-loopback, non-link-local address decides', () => {
    assert.equal(ipv6(['127.0.0.1', '::1', 'fe80::1', '10.0.0.5', '2001:db8::5']).enabled, false);
    assert.equal(ipv6(['127.0.0.1', '::1', 'fe80::1', '2001:db8::5', '10.0.0.5']).enabled, true);
    assert.equal(ipv6(['169.254.1.1', '2001:db8::5', '10.0.0.5']).enabled, true, '169.254/16 is link-local');
    assert.equal(ipv6(['fe80::abcd', '10.0.0.5', '2001:db8::5']).enabled, false, 'fe80::/10 is link-local');
    assert.equal(ipv6(['febf::1', '10.0.0.5']).enabled, false, 'febf:: is still inside fe80::/10');
    assert.equal(ipv6(['fec0::1', '10.0.0.5']).enabled, true, 'fec0:: is outside fe80::/10');
    assert.equal(ipv6(['ff02::1', '224.0.0.1', '10.0.0.5', '2001:db8::5']).enabled, false, 'link-local multicast is skipped');
  });

  test('IPv4-mapped addresses are unmapped first', () => {
    assert.equal(ipv6(['::ffff:10.0.0.5', '2001:db8::5']).enabled, false, '::ffff:10.0.0.5 is IPv4');
    assert.equal(ipv6(['::ffff:127.0.0.1', '2001:db8::5']).enabled, true, '::ffff:127.0.0.1 is IPv4 loopback, skipped');
    assert.equal(ipv6(['::ffff:169.254.0.9', '2001:db8::5']).enabled, true, 'mapped link-local is skipped');
  });

  test('the reason names the deciding address', () => {
    assert.match(ipv6(['::ffff:10.0.0.5']).reason, /10\.0\.0\.5 is IPv4/);
    assert.match(ipv6(['2001:DB8::5']).reason, /2001:db8::5 is IPv6/);
  });

  test('zone suffixes and unparsable entries do not break the scan', () => {
    assert.equal(ipv6(['fe80::1%eth0', 'garbage', '2001:db8::5%eth0']).enabled, true);
  });

  test('no usable address: IPv6 off', () => {
    assert.equal(ipv6(['127.0.0.1', '::1', 'fe80::1']).enabled, false);
    assert.equal(ipv6([]).enabled, false);
  });

  test('with --dual-stack (or its env vars), any IPv6 address enables it', () => {
    const addresses = ['127.0.0.1', '10.0.0.5', 'fe80::1', '2001:db8::5'];
    assert.equal(ipv6(addresses).enabled, false);
    assert.equal(ipv6(addresses, ['--dual-stack']).enabled, true);
    assert.equal(ipv6(addresses, [], { DUAL_STACK: 'true' }).enabled, true);
    assert.equal(ipv6(addresses, [], { ISTIO_DUAL_STACK: 'true' }).enabled, true);
    assert.equal(ipv6(addresses, ['--dual-stack=false'], { ISTIO_DUAL_STACK: 'true' }).enabled, false);
    assert.equal(ipv6(['10.0.0.5', 'fe80::1', '::ffff:10.0.0.6'], ['--dual-stack']).enabled, false, 'link-local and mapped do not count');
  });

  test('--ipv6=true/false overrides detection', () => {
    assert.deepEqual(ipv6(['10.0.0.5'], ['--ipv6=true']), { enabled: true, reason: '--ipv6=true' });
    assert.deepEqual(ipv6(['2001:db8::5'], ['--ipv6=false']), { enabled: false, reason: '--ipv6=false' });
    assert.equal(ipv6(['10.0.0.5'], ['--ipv6', 'auto']).enabled, false);
    assert.equal(ipv6(['10.0.0.5'], [], { MESHCAP_IPV6: 'true' }).enabled, true);
    assert.equal(ipv6(['10.0.0.5'], ['--ipv6=auto'], { MESHCAP_IPV6: 'true' }).enabled, false);
    assert.equal(ipv6(['10.0.0.5', '2001:db8::5'], ['--ipv6=false', '--dual-stack']).enabled, false);
  });
});

describe('DNS servers', () => {
  const RESOLV = [
    '# generated',
    'search default.svc.cluster.local svc.cluster.local',
    'nameserver 10.96.0.10',
    'nameserver\t2001:db8::53',
    'nameserver fe80::1%eth0',
    '#nameserver 1.1.1.1',
    '; nameserver 8.8.8.8',
    'nameserver 010.0.0.1',
    'nameserver ::127.0.0.53',
    '  nameserver 2001:DB8::AA   # upper case',
    'nameserver 169.254.20.10',
    'options ndots:5',
    '',
  ].join('\n');

  const dns = (argv: string[], options: { resolvConf?: string; env?: Env } = {}) => {
    const host = fakeHost({ resolvConf: options.resolvConf });
    const config = parse(argv, options.env ?? {}, host);
    return { ...config.dns, resolvReads: host.resolvReads.count };
  };

  test('resolv.conf nameservers split into v4 and v6; zone-scoped and malformed entries skipped', () => {
    const d = dns(['--redirect-dns'], { resolvConf: RESOLV });
    assert.deepEqual(d.serversV4, ['10.96.0.10', '169.254.20.10']);
    // Istio keeps netip.Addr.String() of each server: ::127.0.0.53 -> ::7f00:35, upper case -> lower.
    assert.deepEqual(d.serversV6, ['2001:db8::53', '::7f00:35', '2001:db8::aa']);
    assert.equal(d.requested, true);
    assert.equal(d.effective, true);
    assert.equal(d.resolvReads, 1);
  });

  test('explicit lists replace resolv.conf, written as given; an explicit empty value means none', () => {
    const both = dns(['--redirect-dns', '--dns-servers-v4', '1.1.1.1,8.8.8.8', '--dns-servers-v6', '::127.0.0.53'], {});
    assert.deepEqual(both.serversV4, ['1.1.1.1', '8.8.8.8']);
    assert.deepEqual(both.serversV6, ['::127.0.0.53'], 'verbatim, as Istio tests inject them (goldens depend on it)');
    assert.equal(both.resolvReads, 0, 'resolv.conf is not needed when both lists are given');

    const emptyV4 = dns(['--redirect-dns', '--dns-servers-v4', ''], { resolvConf: RESOLV });
    assert.deepEqual(emptyV4.serversV4, []);
    assert.deepEqual(emptyV4.serversV6, ['2001:db8::53', '::7f00:35', '2001:db8::aa'], 'the other family still comes from resolv.conf');

    const fromEnv = dns(['--redirect-dns'], { resolvConf: RESOLV, env: { MESHCAP_DNS_SERVERS_V4: '', MESHCAP_DNS_SERVERS_V6: '' } });
    assert.deepEqual([fromEnv.serversV4, fromEnv.serversV6], [[], []]);
  });

  test('DNS is effective only with servers or capture-all', () => {
    const none = dns(['--redirect-dns', '--dns-servers-v4', '', '--dns-servers-v6', '']);
    assert.equal(none.requested, true);
    assert.equal(none.effective, false);
    assert.equal(dns(['--redirect-dns'], { resolvConf: 'search local\n' }).effective, false, 'resolv.conf without nameservers');
    assert.equal(dns(['--redirect-dns', '--dns-servers-v4', '', '--dns-servers-v6', '::1']).effective, true, 'a v6 server alone');

    const all = dns(['--redirect-dns', '--capture-all-dns']);
    assert.deepEqual(all, { requested: true, effective: true, captureAll: true, serversV4: [], serversV6: [], resolvReads: 0 });

    const notAsked = dns(['--capture-all-dns', '--dns-servers-v4', '10.96.0.10'], { resolvConf: RESOLV });
    assert.equal(notAsked.effective, false, 'capture-all without redirect-dns does nothing');
    assert.deepEqual(notAsked.serversV4, [], 'servers are used only for DNS capture');
    assert.equal(notAsked.resolvReads, 0);
  });

  test('unreadable resolv.conf is a configuration error only when its servers are needed', () => {
    assert.throws(() => dns(['--redirect-dns']), (error: unknown) => error instanceof ConfigError && /resolv\.conf/.test(error.message));
    assert.equal(dns(['--redirect-dns', '--capture-all-dns']).effective, true);
    assert.equal(dns([]).effective, false);
  });

  test('explicit lists are validated even when DNS capture is off', () => {
    assert.throws(() => dns(['--dns-servers-v6', '10.0.0.1']), ConfigError);
  });
});

describe('parsed values', () => {
  test('inbound ports: none, list, all with excludes (-d used only with *)', () => {
    assert.deepEqual(parse(['-b', '80,443', '-d', '9999']).inboundPorts, { kind: 'list', ports: [80, 443] });
    assert.deepEqual(parse(['-b', '*', '-d', '15020,15021,']).inboundPorts, { kind: 'all', exclude: [15020, 15021] });
    assert.deepEqual(parse(['-b', ',']).inboundPorts, { kind: 'none' });
  });

  test('outbound CIDRs split by family; loopback include detected', () => {
    const c = parse(['-i', '10.0.0.0/8,2001:DB8::/32,*', '-x', '1.1.0.0/16,fd00::/8']);
    assert.equal(c.outboundCidrs.wildcard, true);
    assert.deepEqual(c.outboundCidrs.v4.map(formatCidr), ['10.0.0.0/8']);
    assert.deepEqual(c.outboundCidrs.v6.map(formatCidr), ['2001:db8::/32']);
    assert.equal(c.outboundCidrs.hasLoopback, false);
    assert.deepEqual(c.outboundCidrsExclude.v4.map(formatCidr), ['1.1.0.0/16']);
    assert.deepEqual(c.outboundCidrsExclude.v6.map(formatCidr), ['fd00::/8']);
    assert.equal(parse(['-i', '127.1.2.3/32']).outboundCidrs.hasLoopback, true);
    assert.equal(parse(['-i', '::1/128']).outboundCidrs.hasLoopback, true);
  });

  test('owner groups: include list, or * with an exclude list', () => {
    assert.deepEqual(parse([], { ISTIO_OUTBOUND_OWNER_GROUPS: 'java,202' }).ownerGroups, { kind: 'only', groups: ['java', '202'] });
    assert.deepEqual(parse([], { ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE: '888,ftp' }).ownerGroups, { kind: 'allExcept', groups: ['888', 'ftp'] });
    const sixtyFour = Array.from({ length: 64 }, (_, i) => `g${i}`);
    assert.equal((parse([], { ISTIO_OUTBOUND_OWNER_GROUPS: sixtyFour.join(',') }).ownerGroups.groups).length, 64);
  });

  test('loopback CIDR is kept verbatim', () => {
    assert.equal(parse([], { ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR: '127.0.0.1/8' }).ipv4LoopbackCidr, '127.0.0.1/8');
  });

  test('backend: --backend, FORCE_IPTABLES_BINARY, --force-iptables-binary', () => {
    assert.equal(parse([], { FORCE_IPTABLES_BINARY: 'nft' }).backend, 'nft');
    assert.equal(parse(['--force-iptables-binary=legacy']).backend, 'legacy');
    assert.equal(parse(['--backend=legacy']).backend, 'legacy');
    assert.equal(parse(['--backend=nft'], { FORCE_IPTABLES_BINARY: 'nft' }).backend, 'nft');
    assert.equal(parse(['--backend=auto'], { FORCE_IPTABLES_BINARY: 'legacy' }).backend, 'legacy');
    assert.throws(() => parse(['--backend=legacy'], { FORCE_IPTABLES_BINARY: 'nft' }), ConfigError);
  });

  test('durations and numbers', () => {
    assert.equal(parse(['--probe-timeout=1m30s']).probeTimeoutMs, 90_000);
    assert.equal(parse(['--probe-timeout=500ms']).probeTimeoutMs, 500);
    assert.equal(parse(['--probe-timeout=1.5s']).probeTimeoutMs, 1500);
    assert.equal(parse(['--probe-timeout=0']).probeTimeoutMs, 0);
    assert.equal(parse(['-t', '0xffffffff']).tproxyMark, 0xffffffff);
    assert.equal(parse(['-r', '252']).tproxyRouteTable, 252);
    assert.equal(parse(['-r', '256']).tproxyRouteTable, 256);
  });

  test('logging flags', () => {
    assert.equal(parse(['--log_output_level=default:debug']).debug, true);
    assert.equal(parse(['--log_output_level=default:info']).debug, false);
    assert.equal(parse(['--log_as_json']).logJson, true);
  });

  test('usage errors and config errors are distinct types', () => {
    assert.throws(() => parse(['--no-such-flag']), UsageError);
    assert.throws(() => parse(['positional']), UsageError);
    assert.throws(() => parse(['-p']), UsageError);
    assert.throws(() => parse(['-p', 'x']), ConfigError);
  });

  test('error messages are one line even for values with control characters', () => {
    for (const argv of [['-p', '1\n2'], ['-c', 'eth0\r\n'], ['--bad\nflag'], ['-i', '10.0.0.0/8\u0000']]) {
      assert.throws(() => parse(argv), (error: unknown) => {
        assert.ok(error instanceof Error);
        assert.ok(!/[\n\r\u0000]/.test(error.message), JSON.stringify(error.message));
        return true;
      });
    }
  });
});
