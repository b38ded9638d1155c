/**
 * Which tool failures mean "another writer changed the rules since we read
 * them" (re-read and retry) and which are real errors (report). The messages
 * are the tools' own, as seen on this machine's iptables 1.8.9 and in races.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RunResult } from '../../src/backend/system.js';
import { isConcurrencyConflict } from '../../src/backend/tool-errors.js';

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
