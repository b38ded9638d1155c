/** Interface addresses read from procfs, as Istio (Go's net.InterfaceAddrs) sees them: no-carrier interfaces included. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readHostFacts } from '../../src/backend/host.js';
import { parseCaptureConfig } from '../../src/config/parse.js';
import { ipv4FromFibTrie, ipv6FromIfInet6, kernelInterfaceAddresses } from '../../src/net/kernel-addresses.js';

// A pod namespace on this kernel: eth0 UP but NO-CARRIER (198.18.3.2, 2001:db8:8::2), eth1 admin-down (198.18.4.2).
// Node's os.networkInterfaces() listed only lo for it.
const FIB_TRIE = `Main:
  +-- 0.0.0.0/0 3 0 5
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
        |-- 127.255.255.255
           /32 link BROADCAST
     +-- 198.18.0.0/21 2 0 2
        +-- 198.18.3.0/24 2 0 2
           |-- 198.18.3.0
              /24 link UNICAST
              |-- 198.18.3.2
                 /32 host LOCAL
           |-- 198.18.3.255
              /32 link BROADCAST
        |-- 198.18.4.2
           /32 host LOCAL
Local:
  +-- 0.0.0.0/0 3 0 5
           |-- 127.0.0.1
              /32 host LOCAL
              |-- 198.18.3.2
                 /32 host LOCAL
        |-- 198.18.4.2
           /32 host LOCAL
`;
const IF_INET6 = `fe8000000000000000fc00fffe000001 03 40 20 80     eth1
00000000000000000000000000000001 01 80 10 80       lo
20010db8000800000000000000000002 02 40 00 82     eth0
`;

test('IPv4 from fib_trie: each local /32 once, broadcast and subnet entries left out', () => {
  assert.deepEqual(ipv4FromFibTrie(FIB_TRIE), ['127.0.0.1', '198.18.3.2', '198.18.4.2']);
});

test('IPv6 from if_inet6: compact form, ordered by interface index (tentative/nodad flags do not matter)', () => {
  assert.deepEqual(ipv6FromIfInet6(IF_INET6), ['::1', '2001:db8:8::2', 'fe80::fc:ff:fe00:1']);
  assert.deepEqual(ipv6FromIfInet6('garbage\n'), []);
});

test("Go's order: every IPv4 address before any IPv6 one; undefined without procfs", () => {
  assert.deepEqual(kernelInterfaceAddresses(FIB_TRIE, IF_INET6), ['127.0.0.1', '198.18.3.2', '198.18.4.2', '::1', '2001:db8:8::2', 'fe80::fc:ff:fe00:1']);
  assert.deepEqual(kernelInterfaceAddresses(undefined, IF_INET6), ['::1', '2001:db8:8::2', 'fe80::fc:ff:fe00:1'], 'no IPv4 file: IPv6 alone');
  assert.equal(kernelInterfaceAddresses(undefined, undefined), undefined);
});

test('an IPv6-only pod whose eth0 has no carrier gets IPv6 rules (read through the system seam)', () => {
  const onlyLoopbackV4 = FIB_TRIE.replace(/198\.18\.\d\.\d+/g, '127.0.0.1');
  const files: Record<string, string> = { '/proc/net/fib_trie': onlyLoopbackV4, '/proc/net/if_inet6': IF_INET6, '/etc/resolv.conf': '' };
  const facts = readHostFacts({ readFile: (path) => files[path] });
  const config = parseCaptureConfig(['-i', '*'], {}, facts);
  assert.equal(config.ipv6.enabled, true);
  assert.equal(config.ipv6.reason, 'first address 2001:db8:8::2 is IPv6');
  // With an IPv4 address anywhere, Istio's first address is IPv4, whatever the interface order.
  const dual = parseCaptureConfig(['-i', '*'], {}, readHostFacts({ readFile: (path) => ({ ...files, '/proc/net/fib_trie': FIB_TRIE })[path] }));
  assert.equal(dual.ipv6.enabled, false);
  assert.match(dual.ipv6.reason, /first address 198\.18\.3\.2 is IPv4/);
});
