/**
 * meshcap under the privileges a pod really grants, against the real kernel:
 * istio-init's securityContext (uid 0, capabilities dropped to NET_ADMIN and
 * NET_RAW, no_new_privs), reproduced with setpriv inside a lab namespace.
 */
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { MESHCAP_BIN, REPO_ROOT } from '../helpers/paths.js';
import { labSkipReason, meshLines, withLab } from '../helpers/netns.js';

const skip = labSkipReason();
const ISTIO_ARGS = ['-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '', '-b', '*', '-d', '15090,15021,15020'];

/** istio-init's capabilities (drop ALL, add NET_ADMIN, NET_RAW) plus `extra`, with allowPrivilegeEscalation: false. */
function asIstioInit(extra: readonly string[] = []): string[] {
  const caps = ['net_admin', 'net_raw', ...extra].map((c) => `+${c}`).join(',');
  return ['setpriv', `--inh-caps=-all,${caps}`, `--bounding-set=-all,${caps}`, '--no-new-privs', process.execPath, MESHCAP_BIN];
}

const noStackTrace = (stderr: string) => assert.doesNotMatch(stderr, /\n\s+at .+:\d+:\d+\)?\n|unexpected internal error/, 'no stack trace for an environment limit');

describe("verify under istio-init's securityContext", { skip }, () => {
  test('NET_ADMIN and NET_RAW only: exit 0, the own connection proves the outbound capture, the proxy probes are skipped naming CAP_SETUID/CAP_SETGID', async () => {
    await withLab('rv', async (lab) => {
      const applied = await lab.exec(lab.pod, [...asIstioInit(), 'istio-iptables', ...ISTIO_ARGS, '--run-validation']);
      assert.equal(applied.code, 0, applied.stderr);
      noStackTrace(applied.stderr);
      assert.match(applied.stderr, /capture in place \(iptables-nft\)/);
      assert.match(applied.stderr, /verify ok: this process \(uid 0\) -> 198\.18\.255\.254:80 is captured to the proxy port 15001 \(conntrack keeps the original destination 198\.18\.255\.254:80\)/);
      const skipped = applied.stderr.split('\n').filter((line) => line.startsWith('meshcap warn: verify skipped:'));
      assert.equal(skipped.length, 2, applied.stderr);
      for (const line of skipped) assert.match(line, /proxy \(uid 1337\) .* needs CAP_SETUID and CAP_SETGID/);
      assert.match(applied.stderr, /verify: 2 checks passed, 2 skipped/);

      const verified = await lab.exec(lab.pod, [...asIstioInit(), 'verify', ...ISTIO_ARGS]);
      assert.equal(verified.code, 0, verified.stderr);
      noStackTrace(verified.stderr);
      assert.match(verified.stderr, /verify ok: the live iptables-nft rules equal the desired ones/);
      assert.match(verified.stderr, /verify ok: this process \(uid 0\) -> \S+ is captured/);
    });
  });

  test('with SETUID and SETGID added every probe runs; a capture of the proxy itself fails the bypass probe (exit 6)', async () => {
    await withLab('rvs', async (lab) => {
      const applied = await lab.exec(lab.pod, [...asIstioInit(['setuid', 'setgid']), 'istio-iptables', ...ISTIO_ARGS, '--run-validation']);
      assert.equal(applied.code, 0, applied.stderr);
      assert.match(applied.stderr, /verify ok: app \(uid 65534\) -> 198\.18\.255\.254:80 is captured to the proxy port 15001 \(conntrack keeps the original destination/);
      assert.match(applied.stderr, /verify ok: proxy \(uid 1337\) -> 127\.0\.0\.7:15008 over lo bypasses the capture \(reached 127\.0\.0\.7:15008 itself\)/);
      assert.match(applied.stderr, /verify ok: proxy \(uid 1337\) -> 127\.0\.0\.6:15002 over lo is sent to the inbound port 15006/);
      assert.match(applied.stderr, /verify: 4 checks passed, 0 skipped/);

      // A foreign rule ahead of the mesh's captures the proxy's own connection: the rules check
      // still passes (the mesh chains are intact), the traffic probe does not.
      const shadow = await lab.exec(lab.pod, ['iptables-nft', '-t', 'nat', '-I', 'OUTPUT', '1', '-p', 'tcp', '-d', '127.0.0.7', '--dport', '15008', '-j', 'REDIRECT', '--to-ports', '15001']);
      assert.equal(shadow.code, 0, shadow.stderr);
      const failed = await lab.exec(lab.pod, [...asIstioInit(['setuid', 'setgid']), 'verify', ...ISTIO_ARGS]);
      assert.equal(failed.code, 6, failed.stderr);
      assert.match(failed.stderr, /proxy \(uid 1337\) -> 127\.0\.0\.7:15008 over lo bypasses the capture: FAILED/);
      assert.match(failed.stderr, /the proxy's own connection was captured \(landed on port 15001\)/);
      noStackTrace(failed.stderr);
    });
  });

  test('TPROXY: the proxy over lo is inbound-captured there, so the bypass probe is skipped with that reason; the rest pass', async () => {
    await withLab('rvt', async (lab) => {
      const result = await lab.meshcap(['istio-iptables', ...ISTIO_ARGS.map((a) => (a === 'REDIRECT' ? 'TPROXY' : a)), '--run-validation']);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stderr, /verify skipped: proxy bypass: in TPROXY mode the proxy's own connections over lo are captured inbound/);
      assert.match(result.stderr, /verify ok: app \(uid 65534\) -> \S+ is captured to the proxy port 15001/);
      assert.match(result.stderr, /verify ok: proxy \(uid 1337\) -> 127\.0\.0\.6:15002 over lo is sent to the inbound port 15006/);
    });
  });

  test('verify as the proxy user (uid 1337, no capabilities): the proxy probes run as itself, exit 0', async () => {
    // uid 1337 may not be able to enter the checkout (a clone under a 0700 mktemp dir), as a pod's
    // proxy user could not read root's files: it runs a world-readable copy of the one-file build.
    const dir = mkdtempSync(join(tmpdir(), 'meshcap-proxy-user-'));
    try {
      chmodSync(dir, 0o755);
      const cli = join(dir, 'meshcap.cjs');
      copyFileSync(join(REPO_ROOT, 'dist', 'meshcap.cjs'), cli);
      chmodSync(cli, 0o644);
      await withLab('rvv', async (lab) => {
      assert.equal((await lab.meshcap(['apply', ...ISTIO_ARGS])).code, 0);
      const result = await lab.exec(lab.pod, ['setpriv', '--reuid=1337', '--regid=1337', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all',
        process.execPath, cli, 'verify', ...ISTIO_ARGS]);
      assert.equal(result.code, 0, result.stderr);
      noStackTrace(result.stderr);
      assert.match(result.stderr, /verify ok: proxy \(uid 1337\) -> 127\.0\.0\.6:15002 over lo is sent to the inbound port 15006/);
      assert.match(result.stderr, /verify skipped: rules check: reading the rules needs CAP_NET_ADMIN/);
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('switching users without CAP_SETUID/CAP_SETGID', { skip }, () => {
  test('the system seam reports EPERM as a result (spawnError), not a throw; probe-connect --uid exits 4 with a JSON answer', async () => {
    await withLab('eperm', async (lab) => {
      const seam = join(REPO_ROOT, 'dist', 'src', 'backend', 'system.js');
      const script = `import(${JSON.stringify(seam)}).then(async ({ realSystem }) => {
        const r = await realSystem().run(process.execPath, ['-e', ''], { uid: 1337, gid: 1337 });
        console.log(JSON.stringify({ code: r.code, spawnError: r.spawnError }));
      })`;
      const caps = '+net_admin,+net_raw';
      const seamRun = await lab.exec(lab.pod, ['setpriv', `--inh-caps=-all,${caps}`, `--bounding-set=-all,${caps}`, '--no-new-privs', process.execPath, '-e', script]);
      assert.equal(seamRun.code, 0, seamRun.stderr);
      assert.deepEqual(JSON.parse(seamRun.stdout), { code: 127, spawnError: 'EPERM' });

      const probe = await lab.exec(lab.pod, [...asIstioInit(), 'probe-connect', '127.0.0.1', '9', '--uid', '1337']);
      assert.equal(probe.code, 4, probe.stderr);
      assert.match(JSON.parse(probe.stdout).error, /cannot run as uid 1337: .*EPERM/);
      noStackTrace(probe.stderr);
    });
  });
});

/**
 * readOnlyRootFilesystem without a writable /run: a private mount namespace inside the lab
 * (unshare -m, private propagation) with a read-only tmpfs over /run, so /run/xtables.lock
 * cannot be created. The machine's own /run is untouched.
 */
function withReadOnlyRun(args: readonly string[], env: Record<string, string> = {}): string[] {
  const assignments = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  return ['unshare', '-m', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs -o ro tmpfs /run && exec env "$@"', 'sh', ...assignments, ...args];
}

describe('readOnlyRootFilesystem without a writable /run', { skip }, () => {
  test('legacy: exit 3 naming the read-only lock file and the fixes, nothing changed; XTABLES_LOCKFILE on a writable path works', async () => {
    await withLab('rolk', async (lab) => {
      const meshcap = [process.execPath, MESHCAP_BIN, 'istio-iptables', ...ISTIO_ARGS, '--backend=legacy'];
      const refused = await lab.exec(lab.pod, withReadOnlyRun(meshcap));
      assert.equal(refused.code, 3, refused.stderr);
      assert.match(refused.stderr, /cannot open its lock file \/run\/xtables\.lock \(Read-only file system\)/);
      assert.match(refused.stderr, /emptyDir on \/run/);
      assert.match(refused.stderr, /XTABLES_LOCKFILE/);
      assert.doesNotMatch(refused.stderr, /rejected the input/);
      noStackTrace(refused.stderr);
      assert.deepEqual(meshLines(await lab.save('legacy')), [], 'nothing was changed');

      const dir = mkdtempSync(join(tmpdir(), 'mc-lock-'));
      try {
        const moved = await lab.exec(lab.pod, withReadOnlyRun(meshcap, { XTABLES_LOCKFILE: join(dir, 'xtables.lock') }));
        assert.equal(moved.code, 0, moved.stderr);
        assert.match(moved.stderr, /capture in place \(iptables-legacy\)/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      // Auto-detection keeps legacy (it holds the mesh rules now): a re-run with /run read-only says the same.
      const rerun = await lab.exec(lab.pod, withReadOnlyRun([process.execPath, MESHCAP_BIN, 'istio-iptables', ...ISTIO_ARGS, '--force-apply']));
      assert.equal(rerun.code, 3, rerun.stderr);
      assert.match(rerun.stderr, /lock file \/run\/xtables\.lock/);
    });
  });

  test('nft takes no lock: works with /run read-only', async () => {
    await withLab('ronf', async (lab) => {
      const result = await lab.exec(lab.pod, withReadOnlyRun([process.execPath, MESHCAP_BIN, 'istio-iptables', ...ISTIO_ARGS]));
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stderr, /capture in place \(iptables-nft\)/);
    });
  });
});

describe('capabilities per backend', { skip }, () => {
  const netAdminOnly = ['setpriv', '--inh-caps=-all,+net_admin', '--bounding-set=-all,+net_admin', '--no-new-privs', process.execPath, MESHCAP_BIN];

  test('NET_ADMIN alone: iptables-nft and native nftables work; iptables-legacy, pinned or holding the capture, is exit 4 naming CAP_NET_RAW', async () => {
    await withLab('cap1', async (lab) => {
      const nft = await lab.exec(lab.pod, [...netAdminOnly, 'istio-iptables', ...ISTIO_ARGS]);
      assert.equal(nft.code, 0, nft.stderr);
      assert.match(nft.stderr, /capture in place \(iptables-nft\)/);
      const native = await lab.exec(lab.pod, [...netAdminOnly, 'istio-iptables', ...ISTIO_ARGS, '--native-nftables']);
      assert.equal(native.code, 0, native.stderr);

      const pinned = await lab.exec(lab.pod, [...netAdminOnly, 'istio-iptables', ...ISTIO_ARGS, '--backend=legacy']);
      assert.equal(pinned.code, 4, pinned.stderr);
      assert.match(pinned.stderr, /missing CAP_NET_RAW: the iptables-legacy backend cannot change netfilter rules without it/);
      assert.match(pinned.stderr, /iptables-nft and native nftables need only CAP_NET_ADMIN/);
      noStackTrace(pinned.stderr);
      assert.deepEqual(meshLines(await lab.save('legacy')), []);
    });
  });

  test('legacy tables present but unreadable without NET_RAW: exit 4, and nothing is written to iptables-nft (no second capture)', async () => {
    await withLab('cap2', async (lab) => {
      assert.equal((await lab.meshcap(['istio-iptables', ...ISTIO_ARGS, '--backend=legacy'])).code, 0);
      const result = await lab.exec(lab.pod, [...netAdminOnly, 'istio-iptables', ...ISTIO_ARGS]);
      assert.equal(result.code, 4, result.stderr);
      assert.match(result.stderr, /missing CAP_NET_RAW/);
      assert.match(result.stderr, /iptables-legacy tables exist in this namespace/);
      assert.deepEqual(meshLines(await lab.save('nft')), []);
      // meshcap clean does not report such a namespace clean.
      const clean = await lab.exec(lab.pod, [...netAdminOnly, 'clean']);
      assert.equal(clean.code, 4, clean.stderr);
      assert.match(clean.stderr, /missing CAP_NET_RAW/);
      assert.ok(meshLines(await lab.save('legacy')).length > 0);
    });
  });
});

/**
 * Who can hold the lock, as the message says: a process that holds it with flock(1) while
 * meshcap waits 1 s. Private mount namespaces (and, for "a container", a private pid
 * namespace whose end kills the holder) keep the machine's /run/xtables.lock untouched.
 */
describe('lock timeout wording', { skip }, () => {
  const meshcap = [process.execPath, MESHCAP_BIN, 'istio-iptables', ...ISTIO_ARGS, '--backend=legacy', '--lock-timeout', '1'];
  // The holder starts first; meshcap runs once it has the lock (polled: flock -n fails while held);
  // the holder is killed right after (flock -F: the sleep itself holds the lock and is $!).
  const script = (lockPath: string, setup: string) =>
    `${setup} || exit 99; flock -F ${lockPath} sleep 30 & holder=$!; ` +
    `until ! flock -n ${lockPath} true; do sleep 0.05; done; env "$@"; rc=$?; kill $holder; exit $rc`;

  test("the container's own /run: only this container can hold it, not kube-proxy", async () => {
    await withLab('lkc', async (lab) => {
      const dir = mkdtempSync(join(tmpdir(), 'mc-lockroot-'));
      try {
        // /tmp lies on the root file system here: like /run inside a container's own root.
        const lock = join(dir, 'xtables.lock');
        const result = await lab.exec(lab.pod, ['unshare', '-m', '-p', '-f', '--mount-proc', 'sh', '-c', script(lock, 'true'), 'sh', `XTABLES_LOCKFILE=${lock}`, ...meshcap]);
        assert.equal(result.code, 5, result.stderr);
        assert.match(result.stderr, new RegExp(`cause: another process in this container held ${lock} the whole time`));
        assert.doesNotMatch(result.stderr, /kube-proxy, a CNI plugin/);
        noStackTrace(result.stderr);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  test('a separate volume on /run in a container: that volume is named; on the machine itself: kube-proxy and CNI plugins', async () => {
    await withLab('lkv', async (lab) => {
      const volume = await lab.exec(lab.pod, ['unshare', '-m', '--propagation', 'private', '-p', '-f', '--mount-proc', 'sh', '-c',
        script('/run/xtables.lock', 'mount -t tmpfs tmpfs /run'), 'sh', ...meshcap]);
      assert.equal(volume.code, 5, volume.stderr);
      assert.match(volume.stderr, /cause: a process in this container, or one sharing the volume mounted at \/run/);
      const node = await lab.exec(lab.pod, ['unshare', '-m', '--propagation', 'private', 'sh', '-c',
        script('/run/xtables.lock', 'mount -t tmpfs tmpfs /run'), 'sh', ...meshcap]);
      assert.equal(node.code, 5, node.stderr);
      assert.match(node.stderr, /cause: another process on this machine \(kube-proxy, a CNI plugin/);
    });
  });
});
