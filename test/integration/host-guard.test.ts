/**
 * The host-namespace guard through the real CLI.
 *
 * Where the guard must fire, the test runs meshcap in this machine's own
 * network namespace, so a broken guard must be harmless: the child's PATH holds
 * only stubs of iptables, ip6tables, nft and ip that record their calls and
 * change nothing (meshcap finds every binary through PATH; node is started by
 * absolute path). Where it must not fire, meshcap runs with the real tools in
 * namespaces the test creates.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { Lab, labSkipReason, meshLines, runAsync } from '../helpers/netns.js';
import { MESHCAP_BIN } from '../helpers/paths.js';

const ISTIO_ARGS = ['-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '', '-b', '*', '-d', '15090,15021,15020'];
// Whether this test process is in the machine's own namespace, found independently of the code under test.
function inMachineNamespace(): boolean {
  const link = (path: string) => { try { return readlinkSync(path); } catch { return undefined; } };
  const self = link('/proc/self/ns/net');
  const kthreadd = (() => { try { return /^Name:\s*kthreadd$/m.test(readFileSync('/proc/2/status', 'utf8')); } catch { return false; } })();
  return self === 'net:[4026531833]' || (kthreadd && self !== undefined && self === link('/proc/1/ns/net'));
}
const hostSkip = labSkipReason() || (inMachineNamespace() ? false : 'skipped: this machine\'s own network namespace is not evident from /proc here (kernel before 6.18 and PID 1 unreadable)');

const stubs = mkdtempSync(join(tmpdir(), 'mc-stubs-'));
after(() => rmSync(stubs, { recursive: true, force: true }));
const calls = join(stubs, 'calls.log');
const TOOLS = ['iptables', 'ip6tables'].flatMap((base) => ['', '-save', '-restore', '-legacy', '-legacy-save', '-legacy-restore', '-nft', '-nft-save', '-nft-restore'].map((s) => `${base}${s}`));
for (const tool of [...TOOLS, 'nft', 'ip', 'iptables-legacy-multi', 'xtables-nft-multi']) {
  // Records the call (and any input), prints nothing, succeeds: an empty, obedient kernel.
  // Shell builtins only: PATH holds nothing but the stubs.
  writeFileSync(join(stubs, tool), `#!/bin/sh\necho "${tool} $*" >> "${calls}"\n[ -t 0 ] || while IFS= read -r line; do echo "$line"; done >> "${calls}"\nexit 0\n`);
  chmodSync(join(stubs, tool), 0o755);
}
const recorded = () => (existsSync(calls) ? readFileSync(calls, 'utf8') : '');
/** meshcap in this machine's namespace with only the stubs on PATH. */
function inHostWithStubs(args: readonly string[], env: Record<string, string> = {}) {
  rmSync(calls, { force: true });
  const result = runCli(args, { env: { PATH: stubs, ...env } });
  return { ...result, calls: recorded() };
}

describe("host-namespace guard, in this machine's own namespace (stub tools only)", { skip: hostSkip }, () => {
  test('apply and istio-iptables refuse with exit 2 and one line, before running anything', () => {
    for (const command of ['apply', 'istio-iptables']) {
      const result = inHostWithStubs([command, ...ISTIO_ARGS]);
      assert.equal(result.code, 2, result.stderr);
      const lines = result.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, result.stderr);
      assert.match(lines[0]!, new RegExp(`^meshcap ${command}: refusing to capture in this machine's own network namespace \\(`));
      assert.match(lines[0]!, /--allow-host-netns \(MESHCAP_ALLOW_HOST_NETNS=true\)/);
      assert.equal(result.calls, '', 'no tool was run');
    }
  });

  test('the override (flag or environment variable) lets it through: the stubs are called', () => {
    const byFlag = inHostWithStubs(['istio-iptables', ...ISTIO_ARGS, '--allow-host-netns']);
    assert.notEqual(byFlag.code, 2, byFlag.stderr);
    assert.match(byFlag.calls, /-restore --noflush/, 'the capture was attempted (on stubs)');
    assert.match(byFlag.calls, /-A ISTIO_OUTPUT/);
    const byEnv = inHostWithStubs(['istio-iptables', ...ISTIO_ARGS], { MESHCAP_ALLOW_HOST_NETNS: 'true' });
    assert.notEqual(byEnv.code, 2, byEnv.stderr);
    assert.match(byEnv.calls, /-restore --noflush/);
  });

  test('a dry run and --cleanup-only (which undoes a misplaced capture) are not refused', () => {
    const dry = inHostWithStubs(['apply', ...ISTIO_ARGS, '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.equal(dry.calls, '');
    const cleanup = inHostWithStubs(['apply', ...ISTIO_ARGS, '--cleanup-only']);
    assert.doesNotMatch(cleanup.stderr, /refusing/);
  });

  test('a private pid namespace on the host network (a hostNetwork pod, podman --network host) is still refused', async () => {
    rmSync(calls, { force: true });
    const result = await runAsync('unshare', ['-p', '-f', '--mount-proc', 'env', `PATH=${stubs}`, process.execPath, MESHCAP_BIN, 'apply', ...ISTIO_ARGS]);
    assert.equal(result.code, 2, result.stderr);
    assert.equal(recorded(), '');
  });
});

describe('host-namespace guard never fires in a namespace of its own (real tools)', { skip: labSkipReason() }, () => {
  test('ip netns exec, a pod-like private pid namespace, a CNI-like nsenter --net, unshare -n', async () => {
    const lab = Lab.create('guard');
    try {
      const direct = await lab.meshcap(['apply', ...ISTIO_ARGS]);
      assert.equal(direct.code, 0, direct.stderr);
      const pod = await lab.exec(lab.pod, ['unshare', '-p', '-f', '--mount-proc', process.execPath, MESHCAP_BIN, 'apply', ...ISTIO_ARGS]);
      assert.equal(pod.code, 0, pod.stderr);
      // A CNI plugin: the host's pid and mount namespaces, the pod's network namespace.
      const cni = await runAsync('nsenter', [`--net=/run/netns/${lab.pod}`, process.execPath, MESHCAP_BIN, 'apply', ...ISTIO_ARGS]);
      assert.equal(cni.code, 0, cni.stderr);
      assert.match(cni.stderr, /already in place/);
      assert.ok(meshLines(await lab.save('nft')).length > 0);
    } finally {
      await lab.destroy();
    }
    const fresh = await runAsync('unshare', ['-n', process.execPath, MESHCAP_BIN, 'apply', ...ISTIO_ARGS]);
    assert.equal(fresh.code, 0, fresh.stderr);
  });
});
