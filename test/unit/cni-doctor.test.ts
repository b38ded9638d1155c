/**
 * Every error meshcap-cni returns, produced by the real plugin shell (a fake
 * System stands in for nsenter and the in-netns half; nothing is run), printed
 * the way containerd prints it, is classified by `meshcap doctor` with a cause
 * and a fix, never as unknown.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { RunResult, System } from '../../src/backend/system.js';
import { runPlugin } from '../../src/cni/plugin.js';
import { diagnose } from '../../src/doctor/classify.js';

const dir = mkdtempSync(join(tmpdir(), 'meshcap-cni-doctor-'));
const badKubeconfig = join(dir, 'kubeconfig-bad');
writeFileSync(badKubeconfig, '{"apiVersion": "v1", "clusters": [');
const deadKubeconfig = join(dir, 'kubeconfig-dead');
writeFileSync(deadKubeconfig, JSON.stringify({ clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:1' } }], users: [{ name: 'u', user: { token: 't' } }], contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }], 'current-context': 'x' }));

const INJECTED = { 'sidecar.istio.io/status': JSON.stringify({ initContainers: ['istio-validation'], containers: ['istio-proxy'] }) };
const env = (command: string, extra: Record<string, string> = {}) => ({
  CNI_COMMAND: command, CNI_CONTAINERID: 'c0ffee', CNI_NETNS: '/proc/self/ns/net', CNI_IFNAME: 'eth0',
  CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=cart-1;K8S_POD_UID=u1', PATH: '/usr/sbin', ...extra,
});
const conf = (extra: Record<string, unknown> = {}) => JSON.stringify({ cniVersion: '1.0.0', name: 'net', type: 'meshcap-cni', stateDir: join(dir, 'state'), apiTimeoutSeconds: 0, ...extra });
const withAnnotations = (annotations: Record<string, string>, extra: Record<string, unknown> = {}) => conf({ runtimeConfig: { 'io.kubernetes.cri.pod-annotations': annotations }, ...extra });

function fakeSystem(child: string | undefined, nsenter = true): System {
  return {
    recording: false,
    which: (name) => (name === 'nsenter' && !nsenter ? undefined : `/usr/bin/${name}`),
    readFile: () => undefined,
    readBytes: () => undefined,
    readLink: () => undefined,
    async run(file, args): Promise<RunResult> {
      return { file, args, code: child === undefined ? 137 : 0, signal: child === undefined ? 'SIGKILL' : null, stdout: child ?? '', stderr: '', notFound: false };
    },
  } as System;
}
const outcome = (o: object) => `${JSON.stringify(o)}\n`;
const engine = { ok: false, kind: 'engine', exitCode: 3, what: "the iptables-legacy backend cannot read this namespace's rules", why: "iptables-legacy-save: can't initialize iptables table `nat': Table does not exist (do you need to insmod?)", fix: 'the kernel may lack ip_tables; try --backend=nft' };

const CASES: { name: string; command: string; env?: Record<string, string>; stdin: string; child?: string; nsenter?: boolean; expect: string[] }[] = [
  { name: 'stdin not JSON (6)', command: 'ADD', stdin: '{nope', expect: ['cni-plugin-failed'] },
  { name: 'CNI_NETNS missing (4)', command: 'ADD', env: { CNI_NETNS: '' }, stdin: conf(), expect: ['cni-plugin-failed'] },
  { name: 'unknown CNI_ARGS key (4)', command: 'ADD', env: { CNI_ARGS: 'K8S_POD_NAME=a;K8S_POD_NAMESPACE=b;X=1' }, stdin: conf(), expect: ['cni-plugin-failed'] },
  { name: 'unsupported cniVersion (1)', command: 'ADD', stdin: conf({ cniVersion: '2.0.0' }), expect: ['cni-plugin-failed'] },
  { name: 'CHECK below 0.4.0 (1)', command: 'CHECK', stdin: conf({ cniVersion: '0.3.1' }), expect: ['cni-plugin-failed'] },
  { name: 'invalid plugin field (7)', command: 'ADD', stdin: conf({ excludeNamespaces: 'kube-system' }), expect: ['cni-plugin-failed'] },
  { name: 'invalid capture annotation (7)', command: 'ADD', stdin: withAnnotations({ ...INJECTED, 'traffic.sidecar.istio.io/excludeInboundPorts': '99999' }), expect: ['invalid-config'] },
  { name: 'no kubeconfig (11)', command: 'ADD', stdin: conf({ kubeconfig: join(dir, 'absent') }), expect: ['cni-api-unavailable'] },
  { name: 'kubeconfig unreadable (11)', command: 'ADD', stdin: conf({ kubeconfig: badKubeconfig }), expect: ['cni-api-unavailable'] },
  { name: 'API unreachable (11)', command: 'ADD', stdin: conf({ kubeconfig: deadKubeconfig }), expect: ['cni-api-unavailable'] },
  { name: 'netns gone (104)', command: 'ADD', env: { CNI_NETNS: join(dir, 'no-such-netns') }, stdin: withAnnotations(INJECTED), expect: ['cni-plugin-failed'] },
  { name: 'nsenter missing (100)', command: 'ADD', stdin: withAnnotations(INJECTED), child: outcome({ ok: true }), nsenter: false, expect: ['cni-plugin-failed'] },
  { name: 'in-netns half killed (100)', command: 'ADD', stdin: withAnnotations(INJECTED), expect: ['cni-plugin-failed'] },
  { name: "engine failure (100): the engine's own cause comes first", command: 'ADD', stdin: withAnnotations(INJECTED), child: outcome(engine), expect: ['nat-table-unavailable', 'cni-plugin-failed'] },
  { name: 'unexpected (100)', command: 'ADD', stdin: withAnnotations(INJECTED), child: outcome({ ok: false, kind: 'internal', exitCode: 1, what: 'meshcap-cni failed unexpectedly (please report it)', why: 'TypeError: x', fix: 'report it' }), expect: ['cni-plugin-failed'] },
  { name: 'CHECK: capture missing (101)', command: 'CHECK', stdin: withAnnotations(INJECTED), child: outcome({ ok: false, kind: 'missing', exitCode: 6, what: 'the mesh capture is missing from the pod network namespace', why: 'no mesh capture', fix: 'delete the pod' }), expect: ['cni-plugin-failed'] },
  { name: 'CHECK: capture differs (102)', command: 'CHECK', stdin: withAnnotations(INJECTED), child: outcome({ ok: false, kind: 'differs', exitCode: 6, what: 'the live capture differs from the one the pod annotations ask for', why: 'drift', fix: 'delete the pod' }), expect: ['cni-plugin-failed'] },
  { name: 'CHECK: several backends (103)', command: 'CHECK', stdin: withAnnotations(INJECTED), child: outcome({ ok: false, kind: 'conflict', exitCode: 6, what: 'mesh rules are in more than one backend', why: 'both', fix: 'delete the pod' }), expect: ['cni-plugin-failed'] },
  { name: 'STATUS with statusGate (50)', command: 'STATUS', stdin: conf({ cniVersion: '1.1.0', statusGate: true }), nsenter: false, expect: ['cni-plugin-failed'] },
];

for (const c of CASES) {
  test(`doctor classifies meshcap-cni's error: ${c.name}`, async () => {
    let stdout = '';
    const code = await runPlugin({ env: env(c.command, c.env), stdin: c.stdin, stdout: (t) => (stdout += t), stderr: () => {}, sys: fakeSystem(c.child, c.nsenter ?? true), self: ['/opt/cni/bin/meshcap-cni'] });
    assert.notEqual(code, 0);
    const error = JSON.parse(stdout) as { code: number; msg: string; details: string };
    assert.equal(typeof error.code, 'number');
    // How containerd (go-cni / libcni) prints a plugin error to the kubelet: `<msg>; <details>`.
    const verb = { ADD: 'add', CHECK: 'check', STATUS: 'status' }[c.command];
    const line = `Warning  FailedCreatePodSandBox  3s  kubelet  Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox "ab12": plugin type="meshcap-cni" failed (${verb}): ${error.msg}; ${error.details}`;
    const diagnosis = diagnose(line);
    const top = diagnosis.causes[0]!;
    assert.equal(top.id, c.expect[0], `${line}\n-> ${diagnosis.causes.map((x) => `${x.id} ${x.confidence}`).join(', ')}`);
    for (const id of c.expect) assert.ok(diagnosis.causes.some((x) => x.id === id), `${id} listed`);
    assert.ok(top.fix.length > 0);
  });
}

test('DEL exits 0 and prints nothing whatever it is given: garbage stdin, no netns, a deleted netns, no prevResult, no kubeconfig, no nsenter', async () => {
  const cases: [Record<string, string>, string][] = [
    [env('DEL'), '{nope'],
    [env('DEL', { CNI_NETNS: '' }), conf()],
    [env('DEL', { CNI_NETNS: join(dir, 'deleted-netns') }), withAnnotations(INJECTED)],
    [env('DEL', { CNI_ARGS: '' }), conf({ kubeconfig: join(dir, 'absent'), cniVersion: '9.9.9' })],
    [{ CNI_COMMAND: 'DEL' }, ''],
  ];
  for (const [e, stdin] of cases) {
    let stdout = '';
    let ran = 0;
    const sys = { ...fakeSystem(undefined, false), run: async () => { ran++; throw new Error('DEL must not run anything'); } } as unknown as System;
    const code = await runPlugin({ env: e, stdin, stdout: (t) => (stdout += t), stderr: () => {}, sys, self: ['/x'] });
    assert.equal(code, 0, JSON.stringify(e));
    assert.equal(stdout, '');
    assert.equal(ran, 0);
  }
});

test("doctor reads meshcap-cni's NSS-sandbox warning from a successful ADD as the name-service cause", async () => {
  // The node has no unshare: the plugin still captures, and warns (the real plugin shell, a fake System).
  const base = fakeSystem(outcome({ ok: true }));
  const sys = { ...base, which: (name: string) => (name === 'unshare' ? undefined : `/usr/bin/${name}`) } as System;
  let stderr = '';
  const code = await runPlugin({ env: env('ADD'), stdin: withAnnotations(INJECTED), stdout: () => {}, stderr: (t) => (stderr += t), sys, self: ['/opt/cni/bin/meshcap-cni'] });
  assert.equal(code, 0, stderr);
  const warning = stderr.split('\n').find((line) => line.includes('warning:'));
  assert.ok(warning, stderr);
  // containerd passes a plugin's stderr to its own journal.
  const journal = `Dec 02 09:14:02 worker-3 containerd[790]: ${warning}`;
  const { causes } = diagnose(journal);
  const top = causes[0]!;
  assert.equal(top.id, 'cni-name-service', causes.map((c) => `${c.id} ${c.confidence}`).join(', '));
  assert.match(top.fix[0]!, /unshare/);
});

test('a remote name service alone, without any CNI in the input, is not blamed', () => {
  const ids = diagnose('passwd:         files ldap\ngroup:          files ldap\nDec 02 10:02:33 worker-1 nslcd[402]: [8b4567] <passwd="root"> failed to bind to LDAP server ldap://10.40.0.5/: Can\'t contact LDAP server\n').causes.map((c) => c.id);
  assert.ok(!ids.includes('cni-name-service'), ids.join(', '));
});
