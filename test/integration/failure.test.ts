/**
 * Failure-proofing against the real kernel: exit codes that mean something
 * (permission, missing binaries, lock), automatic backend fallback, TPROXY and
 * IPv6 end to end, disabled IPv6, and `verify`.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { MESHCAP_BIN } from '../helpers/paths.js';
import { OUTSIDE_V4, OUTSIDE_V6, POD_V4, POD_V6, labSkipReason, meshLines, withLab } from '../helpers/netns.js';

const skip = labSkipReason();
const DEFAULT = ['-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '', '-b', '*', '-d', '15090,15021,15020'];

const noStackTrace = (stderr: string) => assert.doesNotMatch(stderr, /\n\s+at .+\(.*:\d+:\d+\)/, 'no stack trace for an environment problem');

describe('exit codes', { skip }, () => {
  test('without CAP_NET_ADMIN/CAP_NET_RAW (a non-root init container): exit 4 and nothing changes', async () => {
    await withLab('cap', async (lab) => {
      await lab.meshcap(['apply', ...DEFAULT, '--backend=nft']);
      const before = await lab.save('nft');
      const result = await lab.exec(lab.pod, ['setpriv', '--bounding-set=-net_admin,-net_raw', '--inh-caps=-net_admin,-net_raw', process.execPath, MESHCAP_BIN, 'apply', '-i', '10.0.0.0/8']);
      assert.equal(result.code, 4, result.stderr);
      assert.match(result.stderr, /CAP_NET_ADMIN/);
      assert.match(result.stderr, /NET_ADMIN, NET_RAW/, 'the fix names the capabilities to add');
      noStackTrace(result.stderr);
      assert.equal(await lab.save('nft'), before);
    });
  });

  test('a PATH without iptables: exit 3 naming the binary and the package', async () => {
    await withLab('path', async (lab) => {
      const bin = mkdtempSync(join(tmpdir(), 'mc-path-'));
      try {
        symlinkSync(process.execPath, join(bin, 'node'));
        const result = await lab.exec(lab.pod, ['env', `PATH=${bin}`, process.execPath, MESHCAP_BIN, 'apply', ...DEFAULT]);
        assert.equal(result.code, 3, result.stderr);
        assert.match(result.stderr, /iptables was not found on PATH/);
        assert.match(result.stderr, /apt-get install iptables/);
        noStackTrace(result.stderr);
        assert.deepEqual(meshLines(await lab.save('nft')), []);
        assert.deepEqual(meshLines(await lab.save('legacy')), []);
      } finally {
        rmSync(bin, { recursive: true, force: true });
      }
    });
  });

  test('a held xtables lock with the legacy backend: exit 5 within the timeout', async () => {
    await withLab('lock', async (lab) => {
      const dir = mkdtempSync(join(tmpdir(), 'mc-lock-'));
      const lockFile = join(dir, 'xtables.lock');
      writeFileSync(lockFile, '');
      // A private lock file (XTABLES_LOCKFILE) so the machine's own /run/xtables.lock is never held.
      const holder = spawn('flock', ['-x', lockFile, 'sleep', '60'], { stdio: 'ignore' });
      try {
        const deadline = Date.now() + 10_000;
        while (spawnSync('flock', ['-n', lockFile, 'true']).status === 0) {
          assert.ok(Date.now() < deadline, 'the test could not take the lock');
          await new Promise((resolve) => setImmediate(resolve));
        }
        const started = Date.now();
        const result = await lab.meshcap(['apply', ...DEFAULT, '--backend=legacy', '--lock-timeout', '1'], { env: { XTABLES_LOCKFILE: lockFile } });
        const took = Date.now() - started;
        assert.equal(result.code, 5, result.stderr);
        assert.match(result.stderr, /xtables lock was not obtained within 1s/);
        assert.match(result.stderr, /Another app is currently holding the xtables lock/, 'the raw tool output follows');
        assert.ok(took < 15_000, `gave up after ${took} ms`);
        assert.deepEqual(meshLines(await lab.save('legacy')), []);
      } finally {
        holder.kill('SIGKILL');
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});

describe('automatic backend fallback', { skip }, () => {
  function standIn(): string {
    const dir = mkdtempSync(join(tmpdir(), 'mc-standin-'));
    // Fails exactly as iptables-legacy-restore does on a kernel without iptable_nat.
    const script = [
      '#!/bin/sh',
      'cat >/dev/null',
      `echo "iptables-restore v1.8.9 (legacy): iptables-restore: unable to initialize table 'nat'" >&2`,
      'echo "" >&2',
      'echo "Error occurred at line: 1" >&2',
      `echo "Try \\\`iptables-restore -h' or 'iptables-restore --help' for more information." >&2`,
      'exit 1',
      '',
    ].join('\n');
    writeFileSync(join(dir, 'iptables-legacy-restore'), script);
    chmodSync(join(dir, 'iptables-legacy-restore'), 0o755);
    return dir;
  }

  test('legacy without iptable_nat falls back to nft, warns with the module to load', async () => {
    await withLab('fb', async (lab) => {
      // A foreign legacy rule makes detection choose legacy.
      const planted = await lab.exec(lab.pod, ['iptables-legacy', '-A', 'INPUT', '-p', 'tcp', '--dport', '22', '-j', 'ACCEPT']);
      assert.equal(planted.code, 0, planted.stderr);
      const dir = standIn();
      try {
        const env = { PATH: `${dir}:${process.env.PATH}` };
        const result = await lab.meshcap(['apply', ...DEFAULT, '--ipv6=false'], { env });
        assert.equal(result.code, 0, result.stderr);
        assert.match(result.stderr, /backend iptables-legacy: only iptables-legacy holds rules/);
        assert.match(result.stderr, /falling back to iptables-nft/);
        assert.match(result.stderr, /modprobe iptable_nat/);
        assert.ok(meshLines(await lab.save('nft')).length > 10);
        assert.deepEqual(meshLines(await lab.save('legacy')), []);
        const app = await lab.serve(lab.pod, [15001], 'proxy').then(() => lab.connect(lab.pod, OUTSIDE_V4, 8080));
        assert.match(app.reply ?? '', / 15001$/);

        const pinned = await lab.meshcap(['apply', ...DEFAULT, '--ipv6=false', '--backend=legacy'], { env });
        assert.equal(pinned.code, 3, pinned.stderr);
        assert.match(pinned.stderr, /no 'nat' table/);
        assert.match(pinned.stderr, /modprobe iptable_nat/);
        assert.doesNotMatch(pinned.stderr, /falling back/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});

describe('TPROXY end to end', { skip }, () => {
  test('a transparent listener receives inbound connections with their original destination; re-runs keep one ip rule', async () => {
    await withLab('tpx', async (lab) => {
      await lab.serve(lab.outside, [8080], 'outside-app');
      const args = ['-m', 'TPROXY', '-b', '*', '-d', '15021', '-i', '*', '-u', '1337', '--ipv6=true'];
      const first = await lab.meshcap(['apply', ...args]);
      assert.equal(first.code, 0, first.stderr);
      const transparent = (listen: string) =>
        spawn('ip', ['netns', 'exec', lab.pod, 'socat', `${listen},ip-transparent,fork,reuseaddr`, 'SYSTEM:echo tproxy $SOCAT_SOCKADDR $SOCAT_SOCKPORT'], { stdio: 'ignore' });
      const listeners = [transparent('TCP4-LISTEN:15006'), transparent('TCP6-LISTEN:15006,ipv6only=1')];
      try {
        // Poll until the transparent listener answers (no fixed sleep).
        let answer = await lab.connect(lab.outside, POD_V4, 8080);
        for (let i = 0; i < 100 && !answer.ok; i++) answer = await lab.connect(lab.outside, POD_V4, 8080);
        assert.equal(answer.reply, 'tproxy 198.18.0.2 8080', 'TPROXY keeps the original destination address and port');
        let v6 = await lab.connect(lab.outside, POD_V6, 9443);
        for (let i = 0; i < 100 && !v6.ok; i++) v6 = await lab.connect(lab.outside, POD_V6, 9443);
        assert.match(v6.reply ?? v6.error ?? '', /^tproxy \[?(2001:db8::2|2001:0db8:0000:0000:0000:0000:0000:0002)\]? 9443$/);
        const excluded = await lab.connect(lab.outside, POD_V4, 15021);
        assert.equal(excluded.ok, false, 'an excluded port is not diverted to the transparent listener');
      } finally {
        for (const listener of listeners) listener.kill('SIGKILL');
      }
      for (let i = 0; i < 2; i++) {
        const again = await lab.meshcap(['apply', ...args]);
        assert.equal(again.code, 0, again.stderr);
        assert.doesNotMatch(again.stderr, /File exists/);
      }
      for (const family of ['-4', '-6']) {
        const rules = await lab.exec(lab.pod, ['ip', family, 'rule', 'show']);
        assert.equal(rules.stdout.split('\n').filter((l) => /fwmark 0x539 lookup 133/.test(l)).length, 1, `exactly one ip ${family} rule`);
      }
      const cleaned = await lab.meshcap(['clean']);
      assert.equal(cleaned.code, 0, cleaned.stderr);
      const rules = await lab.exec(lab.pod, ['ip', 'rule', 'show']);
      assert.doesNotMatch(rules.stdout, /fwmark/);
    });
  });
});

describe('IPv6 end to end', { skip }, () => {
  test('IPv6 traffic is captured and bypassed as IPv4 is; ::6 is on lo', async () => {
    await withLab('v6', async (lab) => {
      await lab.serve(lab.outside, [8080], 'outside-app');
      await lab.serve(lab.pod, [15001, 15006], 'proxy');
      const result = await lab.meshcap(['apply', ...DEFAULT, '--ipv6=true']);
      assert.equal(result.code, 0, result.stderr);
      const app = await lab.connect(lab.pod, OUTSIDE_V6, 8080);
      assert.match(app.reply ?? app.error ?? '', /^proxy \S+ 15001$/);
      const proxy = await lab.connect(lab.pod, OUTSIDE_V6, 8080, { uid: 1337 });
      assert.equal(proxy.reply, `outside-app ${OUTSIDE_V6} 8080`);
      const inbound = await lab.connect(lab.outside, POD_V6, 8080);
      assert.equal(inbound.reply, `proxy ${POD_V6} 15006`);
      const lo = await lab.exec(lab.pod, ['ip', '-6', 'addr', 'show', 'dev', 'lo']);
      assert.match(lo.stdout, /inet6 ::6\/128/);
      const v4 = await lab.connect(lab.pod, OUTSIDE_V4, 8080);
      assert.match(v4.reply ?? '', / 15001$/);
    });
  });

  test('IPv6 disabled in the namespace: skipped with a note under auto, exit 3 under --ipv6=true', async () => {
    await withLab('nov6', async (lab) => {
      const off = await lab.exec(lab.pod, ['sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1']);
      assert.equal(off.code, 0, off.stderr);
      const auto = await lab.meshcap(['apply', ...DEFAULT, '--dual-stack']);
      assert.equal(auto.code, 0, auto.stderr);
      assert.match(auto.stderr, /IPv6 is disabled in this namespace: IPv6 rules skipped/);
      assert.deepEqual(meshLines(await lab.save('nft', 6)), []);
      const forced = await lab.meshcap(['apply', ...DEFAULT, '--ipv6=true']);
      assert.equal(forced.code, 3, forced.stderr);
      assert.match(forced.stderr, /IPv6 is disabled in this network namespace/);
      noStackTrace(forced.stderr);
    });
  });
});

describe('verify', { skip }, () => {
  test('passes on a correct capture, fails with 6 naming the rule or path that is wrong', async () => {
    await withLab('ver', async (lab) => {
      const applied = await lab.meshcap(['apply', ...DEFAULT, '--run-validation']);
      assert.equal(applied.code, 0, applied.stderr);
      assert.match(applied.stderr, /verify ok: app \(uid 65534\) -> \S+ is captured to the proxy port 15001/);
      assert.match(applied.stderr, /verify ok: proxy \(uid 1337\) -> 127\.0\.0\.7:15008 over lo bypasses the capture/);
      assert.match(applied.stderr, /verify ok: proxy \(uid 1337\) -> 127\.0\.0\.6:15002 over lo is sent to the inbound port 15006/);

      const again = await lab.meshcap(['apply', ...DEFAULT, '--verify']);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stderr, /already in place, nothing to do/);
      assert.match(again.stderr, /verify ok: proxy \(uid 1337\) -> 127\.0\.0\.7:15008 over lo bypasses the capture/, '--verify is meshcap\'s --run-validation');

      const drifted = await lab.meshcap(['verify', ...DEFAULT.map((a) => (a === '15090,15021,15020' ? '15090' : a))]);
      assert.equal(drifted.code, 6, drifted.stderr);
      assert.match(drifted.stderr, /unexpected -A ISTIO_INBOUND -p tcp -m tcp --dport 15021 -j RETURN/);

      // Another tool shadows the capture: our rules are intact, but traffic never reaches them.
      const shadow = await lab.exec(lab.pod, ['iptables-nft', '-t', 'nat', '-I', 'OUTPUT', '1', '-p', 'tcp', '-j', 'ACCEPT']);
      assert.equal(shadow.code, 0, shadow.stderr);
      const failed = await lab.meshcap(['verify', ...DEFAULT]);
      assert.equal(failed.code, 6, failed.stderr);
      assert.match(failed.stderr, /verify ok: the live iptables-nft rules equal the desired ones/);
      assert.match(failed.stderr, /app \(uid 65534\) -> \S+ is captured to the proxy port 15001: FAILED/);
      noStackTrace(failed.stderr);

      // Break a mesh rule itself: named in the rules check.
      await lab.exec(lab.pod, ['iptables-nft', '-t', 'nat', '-D', 'OUTPUT', '1']);
      const broken = await lab.exec(lab.pod, ['iptables-nft', '-t', 'nat', '-R', 'ISTIO_REDIRECT', '1', '-p', 'tcp', '-j', 'RETURN']);
      assert.equal(broken.code, 0, broken.stderr);
      const wrong = await lab.meshcap(['verify', ...DEFAULT]);
      assert.equal(wrong.code, 6, wrong.stderr);
      assert.match(wrong.stderr, /ISTIO_REDIRECT: missing {3}-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001/);
    });
  });
});
