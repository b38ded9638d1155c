/**
 * The NSS sandbox of meshcap-cni (scope item 25) as the plugin shell and the
 * in-netns half drive it, against a fake System: unshare wraps nsenter, a
 * failed unshare falls back to the plain path with a warning, and the bind
 * mount is made only in a private mount namespace that is not the plugin's.
 * The kernel side is proven in test/runtime/cni-nss.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { RunResult, System } from '../../src/backend/system.js';
import { HOST_MNTNS_ENV, mountRefusal, neutraliseNss, unshareFailed } from '../../src/cni/nss-sandbox.js';
import { runPlugin } from '../../src/cni/plugin.js';

const dir = mkdtempSync(join(tmpdir(), 'meshcap-cni-nss-'));
const PRIVATE = '24 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n25 24 0:5 / /proc rw,nosuid - proc proc rw\n';
const SHARED = '24 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n';

interface Call {
  file: string;
  args: readonly string[];
  env: Readonly<Record<string, string>> | undefined;
}

function fake(options: { paths?: Record<string, string | undefined>; links?: Record<string, string>; files?: Record<string, string>; answer: (file: string) => Partial<RunResult> }): { sys: System; calls: Call[] } {
  const calls: Call[] = [];
  const sys = {
    which: (name: string) => (options.paths && name in options.paths ? options.paths[name] : `/usr/bin/${name}`),
    readFile: (path: string) => options.files?.[path],
    readBytes: () => undefined,
    readLink: (path: string) => options.links?.[path],
    async run(file: string, args: readonly string[], runOptions?: { env?: Readonly<Record<string, string>> }): Promise<RunResult> {
      calls.push({ file, args, env: runOptions?.env });
      return { file, args, code: 0, signal: null, stdout: '', stderr: '', notFound: false, ...options.answer(file) };
    },
  } as System;
  return { sys, calls };
}

const OK = `${JSON.stringify({ ok: true, changed: true, backend: 'iptables-nft' })}\n`;
const ADD_ENV = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_NETNS: '/proc/self/ns/net', CNI_IFNAME: 'eth0', CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=cart-1', PATH: '/usr/sbin:/usr/bin' };
const STDIN = JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'meshcap-cni', stateDir: join(dir, 'state'), runtimeConfig: { 'io.kubernetes.cri.pod-annotations': { 'sidecar.istio.io/status': JSON.stringify({ initContainers: ['istio-validation'], containers: ['istio-proxy'] }) } } });

async function add(sys: System, stdin = STDIN): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runPlugin({ env: ADD_ENV, stdin, stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), sys, self: ['/opt/cni/bin/meshcap-cni'] });
  return { code, stdout, stderr };
}

test('ADD runs the in-netns half as unshare --mount --propagation private -- nsenter --net=..., telling it the plugin\'s mount namespace', async () => {
  const { sys, calls } = fake({ links: { '/proc/self/ns/mnt': 'mnt:[4026531841]' }, answer: () => ({ stdout: OK }) });
  const r = await add(sys);
  assert.equal(r.code, 0, r.stdout);
  assert.equal(calls.length, 1);
  assert.equal(calls[0]!.file, '/usr/bin/unshare');
  assert.deepEqual(calls[0]!.args.slice(0, 6), ['--mount', '--propagation', 'private', '--', '/usr/bin/nsenter', '--net=/proc/self/ns/net']);
  assert.deepEqual(calls[0]!.args.slice(6, 10), ['--', '/opt/cni/bin/meshcap-cni', '__netns', 'apply']);
  assert.equal(calls[0]!.env?.[HOST_MNTNS_ENV], 'mnt:[4026531841]');
  // Only what the capture needs: PATH, the lock file and the namespace id.
  assert.deepEqual(Object.keys(calls[0]!.env!).sort(), [HOST_MNTNS_ENV, 'PATH', 'XTABLES_LOCKFILE']);
  assert.doesNotMatch(r.stderr, /warning/);
});

test("a pod's proxyMetadata reaches the capture only where it shapes the rules: no paths, namespaces, binaries or the sandbox's own variable", async () => {
  const status = JSON.stringify({ initContainers: ['istio-validation'], containers: ['istio-proxy'] });
  const proxyConfig = ['proxyMetadata:', '  ISTIO_META_DNS_CAPTURE: "true"', '  LD_PRELOAD: /proc/1/root/tmp/x.so', '  DRY_RUN: "true"', '  DRY_RUN_FILE_PATH: /etc/shadow',
    '  NETWORK_NAMESPACE: /proc/1/ns/net', '  FORCE_IPTABLES_BINARY: /tmp/evil', `  ${HOST_MNTNS_ENV}: "mnt:[1]"`, '  MESHCAP_ALLOW_HOST_NETNS: "true"', '  ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE: "7"', ''].join('\n');
  const stdin = JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'meshcap-cni', stateDir: join(dir, 'state'), runtimeConfig: { 'io.kubernetes.cri.pod-annotations': { 'sidecar.istio.io/status': status, 'proxy.istio.io/config': proxyConfig } } });
  // Sandbox refused, so the plain path (where no namespace id is set by the plugin) is the one looked at.
  const { sys, calls } = fake({ paths: { unshare: undefined }, answer: () => ({ stdout: OK }) });
  const r = await add(sys, stdin);
  assert.equal(r.code, 0, r.stdout);
  const env = calls[0]!.env!;
  assert.deepEqual(Object.keys(env).sort(), ['ISTIO_META_DNS_CAPTURE', 'ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE', 'PATH', 'XTABLES_LOCKFILE']);
  assert.equal(env.ISTIO_META_DNS_CAPTURE, 'true');
  assert.match(r.stderr, /proxyMetadata LD_PRELOAD, DRY_RUN, DRY_RUN_FILE_PATH, NETWORK_NAMESPACE, FORCE_IPTABLES_BINARY, MESHCAP_CNI_HOST_MNTNS, MESHCAP_ALLOW_HOST_NETNS ignored/);
});

test('when unshare is refused (seccomp, SELinux) the capture runs plainly under nsenter, with one warning on stderr', async () => {
  const { sys, calls } = fake({ links: { '/proc/self/ns/mnt': 'mnt:[1]' }, answer: (file) => (file.endsWith('unshare') ? { code: 1, stderr: 'unshare: unshare failed: Operation not permitted\n' } : { stdout: OK }) });
  const r = await add(sys);
  assert.equal(r.code, 0, r.stdout);
  assert.deepEqual(calls.map((c) => c.file), ['/usr/bin/unshare', '/usr/bin/nsenter']);
  assert.equal(calls[1]!.env?.[HOST_MNTNS_ENV], undefined, 'no namespace id: the child must not mount');
  assert.match(r.stderr, /warning: capture runs without a private mount namespace \(unshare: unshare failed: Operation not permitted\)/);
  assert.equal(r.stdout.trim().split('\n').length, 1, 'stdout holds the CNI result alone');
});

test('without unshare on PATH: the plain path, with the reason', async () => {
  const { sys, calls } = fake({ paths: { unshare: undefined }, links: { '/proc/self/ns/mnt': 'mnt:[1]' }, answer: () => ({ stdout: OK }) });
  const r = await add(sys);
  assert.equal(r.code, 0);
  assert.deepEqual(calls.map((c) => c.file), ['/usr/bin/nsenter']);
  assert.match(r.stderr, /'unshare' \(util-linux\) is not on the node's PATH/);
});

test("a failing child is not mistaken for a failing unshare (no second run)", () => {
  const child = { file: 'unshare', args: [], code: 1, signal: null, stdout: `${JSON.stringify({ ok: false })}\n`, stderr: 'unshare: nothing\n', notFound: false };
  assert.equal(unshareFailed(child), undefined);
  assert.equal(unshareFailed({ ...child, stdout: '', stderr: "nsenter: cannot open /run/netns/x: No such file or directory\n" }), undefined);
  assert.equal(unshareFailed({ ...child, stdout: '', stderr: 'unshare: cannot change root filesystem propagation: Permission denied\n' }), 'unshare: cannot change root filesystem propagation: Permission denied');
});

test('the bind mount is refused in the plugin\'s own mount namespace, and while any mount is shared with the node', () => {
  assert.equal(mountRefusal({ hostMntns: 'mnt:[1]', ownMntns: 'mnt:[2]', mountinfo: PRIVATE }), undefined);
  assert.match(mountRefusal({ hostMntns: 'mnt:[1]', ownMntns: 'mnt:[1]', mountinfo: PRIVATE })!, /own mount namespace/);
  assert.match(mountRefusal({ hostMntns: 'mnt:[1]', ownMntns: 'mnt:[2]', mountinfo: SHARED })!, /shared with the node \(\/\)/);
  assert.match(mountRefusal({ hostMntns: 'mnt:[1]', ownMntns: undefined, mountinfo: PRIVATE })!, /cannot be read/);
});

test('the child mounts /dev/null over /etc/nsswitch.conf only when sandboxed, and goes on with a warning when mount fails', async () => {
  const files = { '/proc/self/mountinfo': PRIVATE, '/etc/nsswitch.conf': 'passwd: files ldap\n' };
  const ok = fake({ links: { '/proc/self/ns/mnt': 'mnt:[2]' }, files, answer: () => ({}) });
  const warnings: string[] = [];
  assert.equal(await neutraliseNss(ok.sys, 'mnt:[1]', (l) => warnings.push(l)), 'neutralised');
  assert.deepEqual(ok.calls.map((c) => [c.file, ...c.args]), [['/usr/bin/mount', '--bind', '/dev/null', '/etc/nsswitch.conf']]);
  assert.equal(warnings.length, 0);

  const byHand = fake({ links: { '/proc/self/ns/mnt': 'mnt:[2]' }, files, answer: () => ({}) });
  const later: string[] = [];
  assert.equal(await neutraliseNss(byHand.sys, undefined, (l) => later.push(l)), 'not-sandboxed');
  assert.equal(later.length, 0, 'run by hand: no mount, no warning');
  const same = fake({ links: { '/proc/self/ns/mnt': 'mnt:[1]' }, files, answer: () => ({}) });
  assert.equal(await neutraliseNss(same.sys, 'mnt:[1]', (l) => later.push(l)), 'failed');
  assert.match(later.join('\n'), /own mount namespace/);
  assert.equal(byHand.calls.length + same.calls.length, 0, 'nothing mounted');
  const none = fake({ links: { '/proc/self/ns/mnt': 'mnt:[2]' }, files: { '/proc/self/mountinfo': PRIVATE }, answer: () => ({}) });
  assert.equal(await neutraliseNss(none.sys, 'mnt:[1]', () => {}), 'no-nsswitch');
  assert.equal(none.calls.length, 0);

  const denied = fake({ links: { '/proc/self/ns/mnt': 'mnt:[2]' }, files, answer: () => ({ code: 32, stderr: 'mount: /etc/nsswitch.conf: permission denied.\n' }) });
  const seen: string[] = [];
  assert.equal(await neutraliseNss(denied.sys, 'mnt:[1]', (l) => seen.push(l)), 'failed');
  assert.match(seen.join('\n'), /warning: capture runs without a private mount namespace \(mount --bind \/dev\/null \/etc\/nsswitch.conf: mount: \/etc\/nsswitch.conf: permission denied.\)/);
});
