/**
 * Which tool failures mean "another writer changed the rules since we read
 * them" (re-read and retry) and which are real errors (report). The messages
 * are the tools' own, as seen on this machine's iptables 1.8.9 and in races.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RunResult } from '../../src/backend/system.js';
import { isConcurrencyConflict, toolFailure } from '../../src/backend/tool-errors.js';
import { ExitCode } from '../../src/errors.js';

const failed = (file: string, stderr: string): RunResult => ({ file, args: ['--noflush'], code: 4, signal: null, stdout: '', stderr, notFound: false });

test('races on either backend are recognised as concurrency conflicts', () => {
  const races = [
    ['iptables-legacy-restore', 'iptables-restore: line 2 failed\niptables: Chain already exists.'],
    ['iptables-legacy-restore', 'iptables: Bad rule (does a matching rule exist in that chain?).'],
    ['iptables-legacy-restore', "iptables-restore v1.8.9 (legacy): Couldn't load target `ISTIO_REDIRECT':No such file or directory"],
    ['iptables-legacy-restore', 'iptables: Too many links.'],
    ['iptables-nft-restore', 'iptables-nft-restore v1.8.9 (nf_tables): \nline 6: RULE_DELETE failed (No such file or directory): rule in chain PREROUTING'],
    ['iptables-nft-restore', 'line 3: CHAIN_USER_DEL failed (Device or resource busy): chain ISTIO_INBOUND'],
    ['iptables-nft-restore', 'line 9: CHAIN_USER_DEL failed (No such file or directory): chain ISTIO_OUTPUT'],
    ['iptables-nft-restore', 'line 2: CHAIN_USER_ADD failed (File exists): chain ISTIO_REDIRECT'],
    // -I at a position whose rule another transaction removed.
    ['iptables-nft-restore', 'line 12: RULE_INSERT failed (No such file or directory): rule in chain PREROUTING'],
  ] as const;
  for (const [file, stderr] of races) assert.equal(isConcurrencyConflict(failed(file, stderr)), true, stderr);
});

test('real errors are not mistaken for races', () => {
  const errors = [
    ['iptables-nft-restore', "iptables-nft-restore v1.8.9 (nf_tables): unable to initialize table 'nat'"],
    ['iptables-legacy-restore', "iptables-restore v1.8.9 (legacy): Couldn't load target `REDIRECT':No such file or directory"],
    ['iptables-nft-restore', 'iptables-nft-restore: line 4 failed\nBad argument `15001x`'],
    ['iptables-legacy-restore', 'iptables-restore: Permission denied (you must be root)'],
    ['iptables-nft-restore', 'line 6: RULE_APPEND failed (No such file or directory): rule in chain ISTIO_OUTPUT'],
  ] as const;
  for (const [file, stderr] of errors) assert.equal(isConcurrencyConflict(failed(file, stderr)), false, stderr);
});

test("a read-only /run on the legacy backend is exit 3 naming the lock file and the fixes, not 'the tool rejected the input'", () => {
  const error = toolFailure(failed('/usr/sbin/iptables-legacy-restore', "Fatal: can't open lock file /run/xtables.lock: Read-only file system\n"), {
    action: 'applying the IPv4 rules with /usr/sbin/iptables-legacy-restore',
  });
  assert.equal(error.exitCode, ExitCode.Unsupported);
  assert.match(error.what, /iptables-legacy-restore cannot open its lock file \/run\/xtables\.lock \(Read-only file system\)/);
  assert.match(error.why, /\/run is read-only \(readOnlyRootFilesystem: true without a writable \/run\)/);
  assert.match(error.fix, /emptyDir on \/run/);
  assert.match(error.fix, /XTABLES_LOCKFILE=/);
  assert.doesNotMatch(error.describe(), /rejected the input/);
  // XTABLES_LOCKFILE pointing at another read-only place: the message names that path.
  const moved = toolFailure(failed('iptables-legacy-restore', "Fatal: can't open lock file /etc/xt.lock: Read-only file system"), { action: 'applying' });
  assert.match(moved.what, /\/etc\/xt\.lock/);
  assert.match(moved.fix, /emptyDir on \/etc/);
  // Any other reason still names the lock file.
  const denied = toolFailure(failed('iptables-legacy-restore', "Fatal: can't open lock file /run/xtables.lock: Permission denied"), { action: 'applying' });
  assert.equal(denied.exitCode, ExitCode.Unsupported);
  assert.match(denied.why, /cannot create or open it/);
});

test('a lock timeout names the lock file iptables reports and asks who can hold it there', () => {
  const stderr = "Can't lock /run/xtables.lock: Resource temporarily unavailable\nAnother app is currently holding the xtables lock. Stopped waiting after 2s.\n";
  const asked: string[] = [];
  const error = toolFailure(failed('iptables-legacy-restore', stderr), {
    action: 'applying',
    lockTimeoutSeconds: 2,
    lockHolders: (path) => (asked.push(path), `another process in this container held ${path} the whole time`),
  });
  assert.equal(error.exitCode, ExitCode.LockTimeout);
  assert.deepEqual(asked, ['/run/xtables.lock']);
  assert.match(error.what, /not obtained within 2s/);
  assert.equal(error.why, 'another process in this container held /run/xtables.lock the whole time');
  assert.match(error.fix, /fuser -v \/run\/xtables\.lock/);
  const moved = toolFailure(failed('iptables-legacy-restore', "Can't lock /tmp/x.lock: Resource temporarily unavailable"), { action: 'applying' });
  assert.match(moved.why, /\/tmp\/x\.lock/);
});
