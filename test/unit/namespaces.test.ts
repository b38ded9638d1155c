/**
 * The pure namespace decisions: is this the machine's own network namespace
 * (the host-namespace guard), and who can hold an xtables lock file. Every
 * case is a set of facts as /proc shows them there.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { lockHolders } from '../../src/backend/lock-holders.js';
import { type NamespaceFacts, mountAt, parseMountinfo, readLockFacts, readNamespaceFacts } from '../../src/backend/namespaces.js';
import { INITIAL_NETNS, hostNetnsEvidence } from '../../src/preflight/host-netns.js';

const POD = 'net:[4026532599]';
const OLD_KERNEL_HOST = 'net:[4026531992]'; // before Linux 6.18 init_net's inode was dynamic

const cases: { name: string; facts: NamespaceFacts; fires: boolean }[] = [
  { name: 'init container (own pid namespace; PID 1 is pause or itself, in the pod netns)', facts: { selfNet: POD, pid1Net: POD, kernelThreadsVisible: false }, fires: false },
  { name: 'CNI plugin (host pid and mount namespace, entered the pod netns)', facts: { selfNet: POD, pid1Net: INITIAL_NETNS, kernelThreadsVisible: true }, fires: false },
  { name: 'hostPID pod (sees the host PID 1, own netns)', facts: { selfNet: POD, pid1Net: OLD_KERNEL_HOST, kernelThreadsVisible: true }, fires: false },
  { name: 'ip netns exec / unshare -n on the machine', facts: { selfNet: POD, pid1Net: INITIAL_NETNS, kernelThreadsVisible: true }, fires: false },
  { name: 'a test run without ip netns exec (Linux 6.18+: the initial inode)', facts: { selfNet: INITIAL_NETNS, kernelThreadsVisible: true }, fires: true },
  { name: 'the machine on an older kernel (PID 1 visible, same netns)', facts: { selfNet: OLD_KERNEL_HOST, pid1Net: OLD_KERNEL_HOST, kernelThreadsVisible: true }, fires: true },
  { name: 'older kernel, PID 1 unreadable: not evident', facts: { selfNet: OLD_KERNEL_HOST, kernelThreadsVisible: true }, fires: false },
  { name: 'hostNetwork pod (own pid namespace, the initial netns)', facts: { selfNet: INITIAL_NETNS, pid1Net: INITIAL_NETNS, kernelThreadsVisible: false }, fires: true },
  { name: 'hostNetwork pod on an older kernel: not evident', facts: { selfNet: OLD_KERNEL_HOST, pid1Net: OLD_KERNEL_HOST, kernelThreadsVisible: false }, fires: false },
  { name: 'systemd-nspawn sharing the host network', facts: { selfNet: INITIAL_NETNS, pid1Net: INITIAL_NETNS, kernelThreadsVisible: false }, fires: true },
  { name: 'systemd-nspawn --private-network', facts: { selfNet: POD, pid1Net: POD, kernelThreadsVisible: false }, fires: false },
  { name: 'podman --network host', facts: { selfNet: INITIAL_NETNS, pid1Net: INITIAL_NETNS, kernelThreadsVisible: false }, fires: true },
  { name: 'podman default (own netns)', facts: { selfNet: POD, pid1Net: POD, kernelThreadsVisible: false }, fires: false },
  { name: 'an Istio VM (the machine itself)', facts: { selfNet: INITIAL_NETNS, pid1Net: INITIAL_NETNS, kernelThreadsVisible: true }, fires: true },
  { name: 'nothing readable (no procfs)', facts: { kernelThreadsVisible: false }, fires: false },
];
for (const { name, facts, fires } of cases) {
  test(`host-namespace guard: ${name}: ${fires ? 'refuses' : 'allows'}`, () => {
    const evidence = hostNetnsEvidence(facts);
    assert.equal(evidence !== undefined, fires, evidence);
  });
}

test('the facts are read through the seam: readlink of /proc/{self,1}/ns/net and PID 2 being kthreadd', () => {
  const links: Record<string, string> = { '/proc/self/ns/net': POD, '/proc/1/ns/net': INITIAL_NETNS };
  const files: Record<string, string> = { '/proc/2/status': 'Name:\tkthreadd\nUmask:\t0000\nState:\tS (sleeping)\nPid:\t2\nPPid:\t0\nKthread:\t1\n', '/proc/2/cmdline': '' };
  assert.deepEqual(readNamespaceFacts({ readLink: (p) => links[p], readFile: (p) => files[p] }), { selfNet: POD, pid1Net: INITIAL_NETNS, kernelThreadsVisible: true });
  assert.deepEqual(readNamespaceFacts({ readLink: () => undefined, readFile: () => 'Name:\tpause\n' }), { kernelThreadsVisible: false });
  // A pod process at PID 2 that calls itself kthreadd is not the kernel's (it has a command line, Kthread: 0).
  const impostor: Record<string, string> = { '/proc/2/status': 'Name:\tkthreadd\nPPid:\t0\nKthread:\t0\n', '/proc/2/cmdline': 'kthreadd\0' };
  assert.equal(readNamespaceFacts({ readLink: () => POD, readFile: (p) => impostor[p] }).kernelThreadsVisible, false);
  const oldKernel: Record<string, string> = { '/proc/2/status': 'Name:\tkthreadd\nPPid:\t0\n', '/proc/2/cmdline': 'kthreadd\0' };
  assert.equal(readNamespaceFacts({ readLink: () => POD, readFile: (p) => oldKernel[p] }).kernelThreadsVisible, false, 'no Kthread field: the command line decides');
});

// An init container under containerd: overlay root, /run part of it; a pod with an emptyDir on /run; a node.
const CONTAINER = `1347 1298 0:215 / / ro,relatime master:520 - overlay overlay rw,lowerdir=/var/lib/containerd/l1,upperdir=/var/lib/containerd/u,workdir=/var/lib/containerd/w
1348 1347 0:218 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
1350 1347 0:219 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755
`;
const EMPTYDIR_RUN = `${CONTAINER}1360 1347 254:0 /var/lib/kubelet/pods/6f1c/volumes/kubernetes.io~empty-dir/run /run rw,relatime - ext4 /dev/vda rw
`;
const HOSTPATH_RUN = `${CONTAINER}1361 1347 0:25 / /run rw,nosuid,nodev - tmpfs tmpfs rw,size=2443212k,mode=755
`;
const NODE = `22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
25 22 0:23 / /run rw,nosuid,nodev shared:5 - tmpfs tmpfs rw,mode=755
`;

test('mountinfo: the mount holding a path is the longest mount point containing it; octal escapes decoded', () => {
  assert.equal(mountAt(EMPTYDIR_RUN, '/run')!.root, '/var/lib/kubelet/pods/6f1c/volumes/kubernetes.io~empty-dir/run');
  assert.equal(mountAt(EMPTYDIR_RUN, '/runner')!.mountPoint, '/', '/runner is not under /run');
  assert.equal(mountAt(CONTAINER, '/run')!.fsType, 'overlay');
  assert.equal(parseMountinfo('5 1 0:1 / /mnt/a\\040b rw - tmpfs tmpfs rw\n')[0]!.mountPoint, '/mnt/a b');
});

test("lock holders: the container's own /run names only this container; an emptyDir names the pod's containers; the node names kube-proxy", () => {
  const facts = (mountinfo: string, kernelThreadsVisible: boolean) =>
    readLockFacts({ readFile: (p) => ({ '/proc/self/mountinfo': mountinfo, ...(kernelThreadsVisible ? { '/proc/2/status': 'Name:\tkthreadd\n', '/proc/2/cmdline': '' } : {}) })[p] }, '/run/xtables.lock');
  const own = lockHolders('/run/xtables.lock', facts(CONTAINER, false));
  assert.match(own, /^another process in this container held \/run\/xtables\.lock/);
  assert.doesNotMatch(own.replace(/kube-proxy and CNI plugins lock the node's file, not this one/, ''), /kube-proxy/);
  assert.match(lockHolders('/run/xtables.lock', facts(EMPTYDIR_RUN, false)), /another container of the pod mounting the same emptyDir at \/run/);
  assert.match(lockHolders('/run/xtables.lock', facts(HOSTPATH_RUN, false)), /sharing the volume mounted at \/run .*hostPath of the node's \/run/);
  // hostPID container: kernel threads visible, but the overlay root says container.
  assert.match(lockHolders('/run/xtables.lock', facts(CONTAINER, true)), /^another process in this container/);
  assert.match(lockHolders('/run/xtables.lock', facts(NODE, true)), /^another process on this machine \(kube-proxy, a CNI plugin/);
});
