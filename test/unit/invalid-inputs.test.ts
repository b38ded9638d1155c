/**
 * Every way a user can get the configuration wrong, through the real CLI:
 * exit code 2, one line on stderr that names the flag (long form) and its env
 * vars, no stack trace, nothing on stdout. Positive rows at the end prove the
 * same harness accepts tricky-but-valid input, so the table fails both ways.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runCli } from '../helpers/cli.js';

interface BadRow {
  readonly name: string;
  /** After `istio-iptables --dry-run`. */
  readonly args?: readonly string[];
  readonly env?: Record<string, string>;
  /** Every string the message must contain: the long flag name and its env var(s). */
  readonly mentions: readonly string[];
  /** The offending value, which must appear JSON-quoted (so control characters stay on one line). */
  readonly value?: string;
  /** Usage errors (unknown flag, missing argument, positional) add a "Run ... --help" line. */
  readonly usage?: boolean;
  /** The reason the message must give, where it matters which check refused the value. */
  readonly says?: RegExp;
}

// What each flag's message must name: `--long` plus every env var that feeds it.
const F = {
  envoyPort: ['--envoy-port'],
  capturePort: ['--inbound-capture-port', 'INBOUND_CAPTURE_PORT'],
  tunnelPort: ['--inbound-tunnel-port', 'INBOUND_TUNNEL_PORT'],
  probePort: ['--iptables-probe-port', 'IPTABLES_PROBE_PORT'],
  inboundPorts: ['--istio-inbound-ports', 'ISTIO_INBOUND_PORTS'],
  inboundExclude: ['--istio-local-exclude-ports', 'ISTIO_LOCAL_EXCLUDE_PORTS'],
  outboundPorts: ['--istio-outbound-ports', 'ISTIO_OUTBOUND_PORTS'],
  outboundExclude: ['--istio-local-outbound-ports-exclude', 'ISTIO_LOCAL_OUTBOUND_PORTS_EXCLUDE'],
  cidr: ['--istio-service-cidr', 'ISTIO_SERVICE_CIDR'],
  cidrExclude: ['--istio-service-exclude-cidr', 'ISTIO_SERVICE_EXCLUDE_CIDR'],
  excludeNics: ['--istio-exclude-interfaces', 'ISTIO_EXCLUDE_INTERFACES'],
  virtNics: ['--kube-virt-interfaces', 'KUBE_VIRT_INTERFACES'],
  uid: ['--proxy-uid', 'PROXY_UID'],
  gid: ['--proxy-gid', 'PROXY_GID'],
  mode: ['--istio-inbound-interception-mode', 'ISTIO_INBOUND_INTERCEPTION_MODE'],
  mark: ['--istio-inbound-tproxy-mark', 'ISTIO_INBOUND_TPROXY_MARK'],
  table: ['--istio-inbound-tproxy-route-table', 'ISTIO_INBOUND_TPROXY_ROUTE_TABLE'],
  redirectDns: ['--redirect-dns', 'REDIRECT_DNS', 'ISTIO_META_DNS_CAPTURE'],
  dropInvalid: ['--drop-invalid', 'DROP_INVALID', 'INVALID_DROP'],
  dualStack: ['--dual-stack', 'DUAL_STACK', 'ISTIO_DUAL_STACK'],
  captureAllDns: ['--capture-all-dns', 'CAPTURE_ALL_DNS'],
  dryRun: ['--dry-run', 'DRY_RUN'],
  ipv6: ['--ipv6', 'MESHCAP_IPV6'],
  backend: ['--backend', 'MESHCAP_BACKEND'],
  forceBinary: ['--force-iptables-binary', 'FORCE_IPTABLES_BINARY'],
  lockTimeout: ['--lock-timeout', 'MESHCAP_LOCK_TIMEOUT'],
  probeTimeout: ['--probe-timeout', 'PROBE_TIMEOUT'],
  dnsV4: ['--dns-servers-v4', 'MESHCAP_DNS_SERVERS_V4'],
  dnsV6: ['--dns-servers-v6', 'MESHCAP_DNS_SERVERS_V6'],
  ownerGroups: ['ISTIO_OUTBOUND_OWNER_GROUPS'],
  ownerGroupsExclude: ['ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE'],
  loopback: ['ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR'],
} as const;

const groups65 = Array.from({ length: 65 }, (_, i) => `g${i}`).join(',');

const BAD_ROWS: readonly BadRow[] = [
  // Single ports.
  { name: 'port 0 (-p)', args: ['-p', '0'], mentions: F.envoyPort, value: '0' },
  { name: 'port 65536 (-p)', args: ['-p', '65536'], mentions: F.envoyPort, value: '65536' },
  { name: 'non-numeric port (--envoy-port=)', args: ['--envoy-port=http'], mentions: F.envoyPort, value: 'http' },
  { name: 'port with ; (-p)', args: ['-p', '80;rm'], mentions: F.envoyPort, value: '80;rm', says: /contains ';'/ },
  { name: 'port with leading space (-p)', args: ['-p', ' 80'], mentions: F.envoyPort, value: ' 80' },
  { name: 'port with newline and rule text (-p)', args: ['-p', '80\n-j ACCEPT'], mentions: F.envoyPort, value: '80\n-j ACCEPT', says: /control character/ },
  { name: 'port -1 (-z)', args: ['-z', '-1'], mentions: F.capturePort, value: '-1' },
  { name: 'empty port (--inbound-capture-port=)', args: ['--inbound-capture-port='], mentions: F.capturePort, value: '' },
  { name: 'port 65536 (env INBOUND_CAPTURE_PORT)', env: { INBOUND_CAPTURE_PORT: '65536' }, mentions: F.capturePort, value: '65536' },
  { name: 'non-numeric port (env INBOUND_TUNNEL_PORT)', env: { INBOUND_TUNNEL_PORT: 'hbone' }, mentions: F.tunnelPort, value: 'hbone' },
  { name: 'port 99999 (-e)', args: ['-e', '99999'], mentions: F.tunnelPort, value: '99999' },
  { name: 'probe port 0 (--iptables-probe-port)', args: ['--iptables-probe-port', '0'], mentions: F.probePort, value: '0' },
  { name: 'probe port 70000 (env IPTABLES_PROBE_PORT)', env: { IPTABLES_PROBE_PORT: '70000' }, mentions: F.probePort, value: '70000' },

  // Port lists.
  { name: '* inside a list (-b)', args: ['-b', '*,80'], mentions: F.inboundPorts, value: '*,80' },
  { name: 'port 0 in a list (env ISTIO_INBOUND_PORTS)', env: { ISTIO_INBOUND_PORTS: '80,0' }, mentions: F.inboundPorts, value: '80,0' },
  { name: 'space-separated list (env ISTIO_INBOUND_PORTS)', env: { ISTIO_INBOUND_PORTS: '80 443' }, mentions: F.inboundPorts, value: '80 443' },
  { name: 'newline in list (env ISTIO_INBOUND_PORTS)', env: { ISTIO_INBOUND_PORTS: '80\n-j ACCEPT' }, mentions: F.inboundPorts },
  { name: 'semicolon list (--istio-inbound-ports)', args: ['--istio-inbound-ports', '80;443'], mentions: F.inboundPorts },
  { name: '* as exclude port (-d)', args: ['-b', '*', '-d', '*'], mentions: F.inboundExclude, value: '*' },
  { name: '-1 in exclude list (env ISTIO_LOCAL_EXCLUDE_PORTS)', env: { ISTIO_LOCAL_EXCLUDE_PORTS: '15020,-1' }, mentions: F.inboundExclude },
  { name: 'port 65536 (-q)', args: ['-q', '65536'], mentions: F.outboundPorts, value: '65536' },
  { name: 'name in list (--istio-outbound-ports=)', args: ['--istio-outbound-ports=80,http'], mentions: F.outboundPorts },
  { name: 'newline in list (-o)', args: ['-o', '53\n-j ACCEPT'], mentions: F.outboundExclude, value: '53\n-j ACCEPT' },
  { name: '* (env ISTIO_LOCAL_OUTBOUND_PORTS_EXCLUDE)', env: { ISTIO_LOCAL_OUTBOUND_PORTS_EXCLUDE: '*' }, mentions: F.outboundExclude },

  // CIDRs.
  { name: 'prefix /33 (-i)', args: ['-i', '10.0.0.0/33'], mentions: F.cidr, value: '10.0.0.0/33' },
  { name: 'octet 300 (-i)', args: ['-i', '300.1.1.1/8'], mentions: F.cidr, value: '300.1.1.1/8' },
  { name: 'bare IP without prefix (-i)', args: ['-i', '10.0.0.1'], mentions: F.cidr, value: '10.0.0.1', says: /no prefix length/ },
  { name: 'IPv6 prefix /129 (--istio-service-cidr=)', args: ['--istio-service-cidr=2001:db8::/129'], mentions: F.cidr, value: '2001:db8::/129' },
  { name: 'leading zero octet (-i)', args: ['-i', '010.0.0.0/8'], mentions: F.cidr, value: '010.0.0.0/8' },
  { name: 'garbage in list (env ISTIO_SERVICE_CIDR)', env: { ISTIO_SERVICE_CIDR: '10.0.0.0/8,garbage' }, mentions: F.cidr },
  { name: 'newline in CIDR (-i)', args: ['-i', '10.0.0.0/8\n-j ACCEPT'], mentions: F.cidr, value: '10.0.0.0/8\n-j ACCEPT' },
  { name: '* in exclude CIDRs (-x)', args: ['-x', '*'], mentions: F.cidrExclude, value: '*', says: /'\*' is not allowed/ },
  { name: '* in exclude CIDRs (env ISTIO_SERVICE_EXCLUDE_CIDR)', env: { ISTIO_SERVICE_EXCLUDE_CIDR: '10.0.0.0/8,*' }, mentions: F.cidrExclude },
  { name: 'zone-scoped prefix (-x)', args: ['-x', 'fe80::1%eth0/64'], mentions: F.cidrExclude },
  { name: 'prefix length with leading zero (-x)', args: ['-x', '10.0.0.0/08'], mentions: F.cidrExclude, value: '10.0.0.0/08' },

  // Interface names.
  { name: 'space in interface (-c)', args: ['-c', 'eth0 x'], mentions: F.excludeNics, value: 'eth0 x' },
  { name: '16-byte interface (-c)', args: ['-c', 'abcdefghijklmnop'], mentions: F.excludeNics, value: 'abcdefghijklmnop', says: /15-byte/ },
  { name: '15 characters but 16 bytes (env ISTIO_EXCLUDE_INTERFACES)', env: { ISTIO_EXCLUDE_INTERFACES: 'abcdefghijklmn\u00e9' }, mentions: F.excludeNics, says: /15-byte/ },
  { name: 'tab in interface (--istio-exclude-interfaces=)', args: ['--istio-exclude-interfaces=eth\t0'], mentions: F.excludeNics, value: 'eth\t0' },
  { name: 'leading - in interface (-c)', args: ['-c', '-eth0'], mentions: F.excludeNics, value: '-eth0' },
  { name: 'slash in interface (-k)', args: ['-k', 'a/b'], mentions: F.virtNics, value: 'a/b' },
  { name: 'colon in interface (-k)', args: ['-k', 'a:b'], mentions: F.virtNics, value: 'a:b' },
  { name: '.. as interface (env KUBE_VIRT_INTERFACES)', env: { KUBE_VIRT_INTERFACES: 'eth0,..' }, mentions: F.virtNics },

  // uids and gids.
  { name: 'user name as uid (-u)', args: ['-u', 'istio'], mentions: F.uid, value: 'istio' },
  { name: 'uid with suffix (-u)', args: ['-u', '1337x'], mentions: F.uid, value: '1337x' },
  { name: 'negative uid (-u)', args: ['-u', '-5'], mentions: F.uid, value: '-5' },
  { name: 'name in uid list (env PROXY_UID)', env: { PROXY_UID: '1337,abc' }, mentions: F.uid },
  { name: 'group name as gid (-g)', args: ['-g', 'istio'], mentions: F.gid, value: 'istio' },
  { name: 'gid 4294967295 (env PROXY_GID)', env: { PROXY_GID: '4294967295' }, mentions: F.gid, value: '4294967295' },
  { name: 'gid with space (--proxy-gid=)', args: ['--proxy-gid= 1337'], mentions: F.gid, value: ' 1337' },

  // Owner groups (env only).
  { name: 'owner group with ;', env: { ISTIO_OUTBOUND_OWNER_GROUPS: 'java;rm' }, mentions: F.ownerGroups, value: 'java;rm' },
  { name: 'owner groups set but empty', env: { ISTIO_OUTBOUND_OWNER_GROUPS: '' }, mentions: F.ownerGroups, value: '', says: /lists no group/ },
  { name: 'owner groups set to commas only', env: { ISTIO_OUTBOUND_OWNER_GROUPS: ',,' }, mentions: F.ownerGroups },
  { name: '65 owner groups', env: { ISTIO_OUTBOUND_OWNER_GROUPS: groups65 }, mentions: F.ownerGroups, says: /at most 64/ },
  { name: '* inside an owner group list', env: { ISTIO_OUTBOUND_OWNER_GROUPS: 'java,*' }, mentions: F.ownerGroups },
  { name: 'excluded group with leading -', env: { ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE: 'ftp,-x' }, mentions: F.ownerGroupsExclude },
  { name: 'excluded group with space', env: { ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE: 'a b' }, mentions: F.ownerGroupsExclude },

  // IPv4 loopback CIDR (env only).
  { name: 'non-loopback loopback CIDR', env: { ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR: '10.0.0.1/32' }, mentions: F.loopback },
  { name: 'loopback CIDR shorter than /8', env: { ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR: '127.0.0.1/7' }, mentions: F.loopback },
  { name: 'loopback CIDR without prefix', env: { ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR: '127.0.0.1' }, mentions: F.loopback },
  { name: 'IPv6 loopback CIDR', env: { ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR: '::1/128' }, mentions: F.loopback },

  // Interception modes.
  { name: 'lower-case tproxy (-m)', args: ['-m', 'tproxy'], mentions: F.mode, value: 'tproxy', says: /case-sensitively/ },
  { name: 'NONE (-m)', args: ['-m', 'NONE'], mentions: F.mode, value: 'NONE' },
  { name: 'lower-case redirect (--istio-inbound-interception-mode=)', args: ['--istio-inbound-interception-mode=redirect'], mentions: F.mode },
  { name: 'trailing space (env ISTIO_INBOUND_INTERCEPTION_MODE)', env: { ISTIO_INBOUND_INTERCEPTION_MODE: 'TPROXY ' }, mentions: F.mode },

  // Booleans.
  { name: 'REDIRECT_DNS=yes', env: { REDIRECT_DNS: 'yes' }, mentions: F.redirectDns, value: 'yes' },
  { name: 'ISTIO_META_DNS_CAPTURE=enabled', env: { ISTIO_META_DNS_CAPTURE: 'enabled' }, mentions: F.redirectDns, value: 'enabled' },
  { name: 'INVALID_DROP=on', env: { INVALID_DROP: 'on' }, mentions: F.dropInvalid, value: 'on' },
  { name: 'DUAL_STACK=2', env: { DUAL_STACK: '2' }, mentions: F.dualStack, value: '2' },
  { name: 'CAPTURE_ALL_DNS=all', env: { CAPTURE_ALL_DNS: 'all' }, mentions: F.captureAllDns },
  { name: '--redirect-dns=yes', args: ['--redirect-dns=yes'], mentions: F.redirectDns, value: 'yes', usage: true },
  { name: '-n=maybe (short bool)', args: ['-n=maybe'], mentions: F.dryRun, value: 'maybe', usage: true },

  // meshcap's own options and the backend choice.
  { name: '--ipv6=maybe', args: ['--ipv6=maybe'], mentions: F.ipv6, value: 'maybe' },
  { name: 'MESHCAP_IPV6=yes', env: { MESHCAP_IPV6: 'yes' }, mentions: F.ipv6, value: 'yes' },
  { name: '--backend=iptables', args: ['--backend=iptables'], mentions: F.backend, value: 'iptables' },
  { name: 'MESHCAP_BACKEND=nftables', env: { MESHCAP_BACKEND: 'nftables' }, mentions: F.backend, value: 'nftables' },
  { name: 'FORCE_IPTABLES_BINARY=auto', env: { FORCE_IPTABLES_BINARY: 'auto' }, mentions: F.forceBinary, value: 'auto' },
  { name: '--force-iptables-binary=iptables-nft', args: ['--force-iptables-binary=iptables-nft'], mentions: F.forceBinary },
  {
    name: '--backend=legacy conflicts with FORCE_IPTABLES_BINARY=nft',
    args: ['--backend=legacy'],
    env: { FORCE_IPTABLES_BINARY: 'nft' },
    mentions: [...F.backend, 'FORCE_IPTABLES_BINARY'],
  },
  { name: '--lock-timeout=-1', args: ['--lock-timeout=-1'], mentions: F.lockTimeout, value: '-1' },
  { name: '--lock-timeout=30s', args: ['--lock-timeout', '30s'], mentions: F.lockTimeout, value: '30s' },
  { name: 'MESHCAP_LOCK_TIMEOUT=86401', env: { MESHCAP_LOCK_TIMEOUT: '86401' }, mentions: F.lockTimeout, value: '86401' },
  { name: '--probe-timeout=5 (no unit)', args: ['--probe-timeout=5'], mentions: F.probeTimeout, value: '5' },
  { name: '--probe-timeout=-5s', args: ['--probe-timeout=-5s'], mentions: F.probeTimeout, value: '-5s' },
  { name: 'PROBE_TIMEOUT=soon', env: { PROBE_TIMEOUT: 'soon' }, mentions: F.probeTimeout, value: 'soon' },

  // TPROXY mark and route table.
  { name: 'mark 0 (-t)', args: ['-t', '0'], mentions: F.mark, value: '0' },
  { name: 'mark 0x0 (env ISTIO_INBOUND_TPROXY_MARK)', env: { ISTIO_INBOUND_TPROXY_MARK: '0x0' }, mentions: F.mark, value: '0x0' },
  { name: 'non-numeric mark (-t)', args: ['-t', 'abc'], mentions: F.mark, value: 'abc' },
  { name: 'mark over 32 bits (-t)', args: ['-t', '4294967296'], mentions: F.mark, value: '4294967296' },
  { name: 'route table 0 (-r)', args: ['-r', '0'], mentions: F.table, value: '0' },
  { name: 'route table 253 (-r)', args: ['-r', '253'], mentions: F.table, value: '253' },
  { name: 'route table 254 (env ISTIO_INBOUND_TPROXY_ROUTE_TABLE)', env: { ISTIO_INBOUND_TPROXY_ROUTE_TABLE: '254' }, mentions: F.table, value: '254' },
  { name: 'route table 255 (--istio-inbound-tproxy-route-table=)', args: ['--istio-inbound-tproxy-route-table=255'], mentions: F.table, value: '255' },
  { name: 'route table by name (-r)', args: ['-r', 'main'], mentions: F.table, value: 'main' },

  // DNS servers.
  { name: 'IPv6 address in the v4 list', args: ['--redirect-dns', '--dns-servers-v4', '::1'], mentions: F.dnsV4, value: '::1' },
  { name: 'garbage in the v4 list', args: ['--redirect-dns', '--dns-servers-v4', '10.96.0.10,garbage'], mentions: F.dnsV4 },
  { name: 'prefix instead of address in the v4 list', args: ['--redirect-dns', '--dns-servers-v4=10.96.0.10/32'], mentions: F.dnsV4 },
  { name: 'IPv4 address in the v6 list', args: ['--redirect-dns', '--dns-servers-v6', '10.96.0.10'], mentions: F.dnsV6, value: '10.96.0.10' },
  { name: 'zone-scoped v6 server (env MESHCAP_DNS_SERVERS_V6)', args: ['--redirect-dns'], env: { MESHCAP_DNS_SERVERS_V6: 'fe80::1%eth0' }, mentions: F.dnsV6 },
  { name: 'newline in v4 list without --redirect-dns', args: ['--dns-servers-v4', '10.96.0.10\n-j ACCEPT'], mentions: F.dnsV4 },

  // Usage errors.
  { name: 'unknown long flag', args: ['--bogus'], mentions: ['--bogus'], usage: true },
  { name: 'removed Istio flag --restore-format', args: ['--restore-format=false'], mentions: ['--restore-format'], usage: true },
  { name: 'unknown shorthand flag', args: ['-y'], mentions: ["'y'"], usage: true },
  { name: 'unknown flag with a newline in it', args: ['--bo\ngus'], mentions: ['--bo\\ngus'], usage: true },
  { name: 'missing argument (-p)', args: ['-p'], mentions: F.envoyPort, usage: true },
  { name: 'missing argument (-z)', args: ['-z'], mentions: F.capturePort, usage: true },
  { name: 'missing argument (--istio-inbound-ports)', args: ['--istio-inbound-ports'], mentions: F.inboundPorts, usage: true },
  { name: 'unexpected positional argument', args: ['foo'], mentions: ['"foo"'], usage: true },
  { name: 'positional after --', args: ['--', '-p', '15001'], mentions: ['"-p"'], usage: true },
];

interface GoodRow {
  readonly name: string;
  /** After `istio-iptables --dry-run --ipv6=false` (unless `bare`). */
  readonly args: readonly string[];
  readonly env?: Record<string, string>;
  /** Start from `istio-iptables` alone: the row supplies dry-run itself. */
  readonly bare?: boolean;
  readonly has?: readonly string[];
  readonly lacks?: readonly string[];
}

const DNS_JUMP = '-A ISTIO_OUTPUT -j ISTIO_OUTPUT_DNS';

const GOOD_ROWS: readonly GoodRow[] = [
  {
    name: '-d with a trailing comma and -b *',
    args: ['-b', '*', '-d', '6000,7000,'],
    has: ['-A ISTIO_INBOUND -p tcp --dport 6000 -j RETURN', '-A ISTIO_INBOUND -p tcp --dport 7000 -j RETURN', '-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT'],
  },
  { name: '-b * alone', args: ['-b', '*'], has: ['-A PREROUTING -p tcp -j ISTIO_INBOUND', '-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT'] },
  { name: '-p=15099', args: ['-p=15099'], has: ['-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15099'] },
  { name: '-p15099', args: ['-p15099'], has: ['-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15099'] },
  { name: '--envoy-port=15099', args: ['--envoy-port=15099'], has: ['-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15099'] },
  { name: '-p given twice: the last wins', args: ['-p', '1', '-p', '15099'], has: ['--to-ports 15099'], lacks: ['--to-ports 1\n'] },
  { name: 'ENVOY_PORT is not read (Istio binds no env to -p)', args: [], env: { ENVOY_PORT: '9999' }, has: ['--to-ports 15001'], lacks: ['9999'] },
  {
    name: 'ISTIO_META_DNS_CAPTURE=true overrides REDIRECT_DNS=false',
    args: ['--dns-servers-v4', '10.96.0.10', '--dns-servers-v6', ''],
    env: { REDIRECT_DNS: 'false', ISTIO_META_DNS_CAPTURE: 'true' },
    has: [DNS_JUMP, '-A ISTIO_OUTPUT_DNS -p udp --dport 53 -d 10.96.0.10/32 -j REDIRECT --to-port 15053'],
  },
  {
    name: 'ISTIO_META_DNS_CAPTURE=false overrides REDIRECT_DNS=true',
    args: ['--dns-servers-v4', '10.96.0.10', '--dns-servers-v6', ''],
    env: { REDIRECT_DNS: 'true', ISTIO_META_DNS_CAPTURE: 'false' },
    lacks: ['ISTIO_OUTPUT_DNS'],
  },
  {
    name: 'empty bool env is ignored (the other env var stands)',
    args: ['--dns-servers-v4', '10.96.0.10', '--dns-servers-v6', ''],
    env: { REDIRECT_DNS: 'true', ISTIO_META_DNS_CAPTURE: '' },
    has: [DNS_JUMP],
  },
  { name: 'empty bool env alone changes nothing', args: [], env: { REDIRECT_DNS: '', DROP_INVALID: '' }, lacks: ['ISTIO_OUTPUT_DNS', 'ISTIO_DROP'] },
  {
    name: '--redirect-dns=false beats REDIRECT_DNS=true',
    args: ['--redirect-dns=false', '--dns-servers-v4', '10.96.0.10'],
    env: { REDIRECT_DNS: 'true' },
    lacks: ['ISTIO_OUTPUT_DNS'],
  },
  { name: '-n short dry-run', bare: true, args: ['-n', '--ipv6=false'], has: ['iptables-save\nip6tables-save\n* nat\n'] },
  { name: 'DRY_RUN=true env', bare: true, args: ['--ipv6=false'], env: { DRY_RUN: 'true' }, has: ['-A OUTPUT -j ISTIO_OUTPUT'] },
  { name: 'grouped short flags -nb *', bare: true, args: ['-nb', '*', '--ipv6=false'], has: ['-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT'] },
  { name: 'interfaces empty after split', args: ['-c', ',', '-k', ''], lacks: ['-i ', '-o eth'] },
  { name: 'interface wildcard eth+', args: ['-c', 'eth+'], has: ['-A PREROUTING -i eth+ -j RETURN'] },
  { name: 'empty mode means REDIRECT', args: ['-m', '', '-b', '80'], has: ['-A ISTIO_INBOUND -p tcp --dport 80 -j ISTIO_IN_REDIRECT'], lacks: ['* mangle'] },
  { name: 'hex tproxy mark', args: ['-m', 'TPROXY', '-b', '*', '-t', '0x10'], has: ['-A ISTIO_DIVERT -j MARK --set-mark 16'] },
  { name: 'CIDR with host bits is printed as written', args: ['-i', '10.0.0.1/8'], has: ['-A ISTIO_OUTPUT -d 10.0.0.1/8 -j ISTIO_REDIRECT'] },
  { name: 'upper-case IPv6 prefix is printed in netip form', args: ['--ipv6=true', '-i', '2001:DB8:0:0::/32'], has: ['-A ISTIO_OUTPUT -d 2001:db8::/32 -j ISTIO_REDIRECT'] },
  { name: 'uid 0 is a valid uid', args: ['-u', '0', '-g', '0'], has: ['-A ISTIO_OUTPUT -m owner --uid-owner 0 -j RETURN'] },
  { name: 'owner groups by name and gid', args: [], env: { ISTIO_OUTBOUND_OWNER_GROUPS: 'java,202' }, has: ['-m owner ! --gid-owner java -m owner ! --gid-owner 202 -j RETURN'] },
  { name: 'backend flag and FORCE_IPTABLES_BINARY agree', args: ['--backend=nft'], env: { FORCE_IPTABLES_BINARY: 'nft' }, has: ['* nat'] },
  { name: 'lock timeout 0 and probe timeout 1m30s', args: ['--lock-timeout=0', '--probe-timeout=1m30s'], has: ['* nat'] },
  { name: 'loopback CIDR /8 printed verbatim', args: [], env: { ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR: '127.0.0.1/8' }, has: ['-A ISTIO_OUTPUT -d 127.0.0.1/8 -j RETURN'] },
];

const STACK_TRACE = /\n\s+at /;
const NODE_ERROR = /^\w*Error:/m;

describe('invalid inputs: exit 2, one line naming the flag, no stack trace, nothing on stdout', () => {
  test('the table is big enough', () => {
    assert.ok(BAD_ROWS.length >= 60, `only ${BAD_ROWS.length} rows`);
    assert.equal(new Set(BAD_ROWS.map((row) => row.name)).size, BAD_ROWS.length, 'row names must be unique');
  });

  for (const row of BAD_ROWS) {
    test(row.name, () => {
      const result = runCli(['istio-iptables', '--dry-run', ...(row.args ?? [])], { env: row.env ?? {} });
      const context = `stderr was:\n${result.stderr}`;
      assert.equal(result.code, 2, context);
      assert.equal(result.stdout, '', 'invalid input must print nothing on stdout');
      assert.doesNotMatch(result.stderr, STACK_TRACE, context);
      assert.doesNotMatch(result.stderr, NODE_ERROR, context);
      assert.ok(result.stderr.endsWith('\n'), context);
      const lines = result.stderr.slice(0, -1).split('\n');
      if (row.usage) {
        assert.equal(lines.length, 2, context);
        assert.equal(lines[1], "Run 'meshcap istio-iptables --help' for usage.");
      } else {
        assert.equal(lines.length, 1, context);
      }
      const message = lines[0]!;
      assert.match(message, /^meshcap istio-iptables: /);
      for (const text of row.mentions) assert.ok(message.includes(text), `message does not name ${text}: ${message}`);
      if (row.says) assert.match(message, row.says);
      if (row.value !== undefined) {
        assert.ok(message.includes(JSON.stringify(row.value)), `message does not show the value ${JSON.stringify(row.value)}: ${message}`);
      }
      // A flag value that came from the environment says which variable it came from.
      const envNames = Object.keys(row.env ?? {});
      if (!row.args?.length && envNames.length === 1 && row.mentions[0]!.startsWith('--')) {
        assert.ok(message.includes(`from env ${envNames[0]}`), `message does not say the value came from env ${envNames[0]}: ${message}`);
      }
    });
  }
});

describe('tricky but valid inputs: exit 0 with the expected rules', () => {
  for (const row of GOOD_ROWS) {
    test(row.name, () => {
      const prefix = row.bare ? ['istio-iptables'] : ['istio-iptables', '--dry-run', '--ipv6=false'];
      const result = runCli([...prefix, ...row.args], { env: row.env ?? {} });
      assert.equal(result.code, 0, result.stderr);
      assert.doesNotMatch(result.stderr, STACK_TRACE);
      assert.match(result.stdout, /^iptables-save\nip6tables-save\n/);
      for (const text of row.has ?? []) assert.ok(result.stdout.includes(text), `missing ${JSON.stringify(text)} in:\n${result.stdout}`);
      for (const text of row.lacks ?? []) assert.ok(!result.stdout.includes(text), `unexpected ${JSON.stringify(text)} in:\n${result.stdout}`);
    });
  }
});
