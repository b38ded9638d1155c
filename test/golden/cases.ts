/**
 * The configuration behind each of Istio's capture goldens, transcribed from
 * ../shared/anchors/istio-iptables/CASES.md (section 1.3). IPv6 and DNS servers
 * are computed by Istio from the host; here they are given explicitly.
 */
export interface GoldenCase {
  readonly name: string;
  readonly args: readonly string[];
  readonly env?: Record<string, string>;
  readonly ipv6: boolean;
  readonly dnsV4?: string;
  readonly dnsV6?: string;
  /** Present only in nftables-capture/. */
  readonly nftOnly?: boolean;
}

/** The base every case starts from: `-p 15001 -z 15006 -e 15008 -u 1337 -g 1337 -t 1337 -r 133 -b "" -i ""`. */
export const BASE_ARGS = ['-p', '15001', '-z', '15006', '-e', '15008', '-u', '1337', '-g', '1337', '-t', '1337', '-r', '133', '-b', '', '-i', ''];

export const GOLDEN_CASES: readonly GoldenCase[] = [
  { name: 'ipv6-empty-inbound-ports', args: ['-b', ''], ipv6: true },
  { name: 'ip-range', args: ['-x', '1.1.0.0/16', '-i', '9.9.0.0/16', '--redirect-dns', '-g', '1,2', '-u', '3,4'], ipv6: false, dnsV4: '127.0.0.53' },
  {
    name: 'tproxy',
    args: ['-m', 'TPROXY', '-b', '*', '-x', '1.1.0.0/16', '-i', '9.9.0.0/16', '--redirect-dns', '-g', '1337', '-u', '1337', '-c', 'not-istio-nic'],
    ipv6: true,
    dnsV4: '127.0.0.53',
    dnsV6: '',
  },
  { name: 'ipv6-inbound-ports', args: ['-b', '4000,5000'], ipv6: true },
  { name: 'ipv6-virt-interfaces', args: ['-b', '4000,5000', '-k', 'eth0,eth1'], ipv6: true },
  { name: 'ipv6-ipnets', args: ['-b', '4000,5000', '-d', '6000,7000,', '-k', 'eth0,eth1', '-x', '2001:db8::/32', '-i', '2001:db8::/32'], ipv6: true },
  {
    name: 'ipv6-uid-gid',
    args: ['-b', '4000,5000', '-d', '6000,7000', '-k', 'eth0,eth1', '-g', '1,2', '-u', '3,4', '-x', '2001:db8::/32', '-i', '2001:db8::/32'],
    ipv6: true,
  },
  { name: 'ipv6-outbound-ports', args: ['-b', '', '-q', '32000,31000'], ipv6: true },
  { name: 'empty', args: [], ipv6: false },
  { name: 'kube-virt-interfaces', args: ['-k', 'eth1,eth2', '-i', '*'], ipv6: false },
  { name: 'ipnets', args: ['-i', '10.0.0.0/8'], ipv6: false },
  { name: 'ipnets-with-kube-virt-interfaces', args: ['-k', 'eth1,eth2', '-i', '10.0.0.0/8'], ipv6: false },
  { name: 'inbound-ports-include', args: ['-b', '32000,31000'], ipv6: false },
  { name: 'inbound-ports-wildcard', args: ['-b', '*'], ipv6: false },
  { name: 'inbound-ports-tproxy', args: ['-b', '32000,31000', '-m', 'TPROXY'], ipv6: false },
  { name: 'inbound-ports-wildcard-tproxy', args: ['-b', '*', '-m', 'TPROXY'], ipv6: false },
  { name: 'dns-uid-gid', args: ['--redirect-dns', '-g', '1,2', '-u', '3,4'], ipv6: true, dnsV4: '127.0.0.53', dnsV6: '::127.0.0.53' },
  { name: 'ipv6-dns-uid-gid', args: ['--redirect-dns', '-g', '1,2', '-u', '3,4'], ipv6: true, dnsV4: '', dnsV6: '' },
  { name: 'outbound-owner-groups', args: [], env: { ISTIO_OUTBOUND_OWNER_GROUPS: 'java,202' }, ipv6: false },
  { name: 'outbound-owner-groups-exclude', args: [], env: { ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE: '888,ftp' }, ipv6: false },
  { name: 'ipv6-dns-outbound-owner-groups', args: ['--redirect-dns'], env: { ISTIO_OUTBOUND_OWNER_GROUPS: 'java,202' }, ipv6: true, dnsV4: '', dnsV6: '' },
  {
    name: 'ipv6-dns-outbound-owner-groups-exclude',
    args: ['--redirect-dns'],
    env: { ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE: '888,ftp' },
    ipv6: true,
    dnsV4: '',
    dnsV6: '',
  },
  { name: 'outbound-ports-include', args: ['-q', '32000,31000'], ipv6: false },
  { name: 'loopback-outbound-iprange', args: ['-i', '127.1.2.3/32', '--redirect-dns', '-g', '1,2', '-u', '3,4'], ipv6: false, dnsV4: '127.0.0.53' },
  { name: 'basic-exclude-nic', args: ['-c', 'not-istio-nic'], ipv6: false },
  { name: 'drop-invalid', args: ['--drop-invalid'], ipv6: false },
  { name: 'host-ipv4-loopback-cidr', args: [], env: { ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR: '127.0.0.1/8' }, ipv6: false },
  { name: 'inbound-ports-empty-tproxy', args: ['-b', '', '-m', 'TPROXY'], ipv6: false, nftOnly: true },
];

/** The full command line for a case: base, then the case's flags (later flags win, as in pflag). */
export function caseArgs(c: GoldenCase, nft: boolean): string[] {
  const args = ['istio-iptables', '--dry-run', ...BASE_ARGS, ...c.args, `--ipv6=${c.ipv6}`];
  if (c.dnsV4 !== undefined) args.push('--dns-servers-v4', c.dnsV4);
  if (c.dnsV6 !== undefined) args.push('--dns-servers-v6', c.dnsV6);
  if (nft) args.push('--native-nftables');
  return args;
}
