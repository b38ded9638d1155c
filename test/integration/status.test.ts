/**
 * `meshcap status` in real namespaces: healthy, absent, drifted, incomplete,
 * rules only in legacy tables, and mesh rules in both backends.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { Lab, labSkipReason, runAsync } from '../helpers/netns.js';
import { MESHCAP_BIN } from '../helpers/paths.js';

const skip = labSkipReason();

const CONFIG = ['-p', '15001', '-z', '15006', '-u', '1337', '-g', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '198.18.1.0/24', '-b', '*', '-d', '9090,15021', '--ipv6=false'];
const OTHER = ['-p', '15001', '-z', '15006', '-u', '1337', '-i', '198.18.0.0/24', '-b', '8080', '--ipv6=false'];

interface Report {
  health: string;
  active?: string;
  backends: { name: string; present: boolean; problems: string[]; meshRules: Record<string, number>; derived?: { flags: [string, string][] } }[];
  drift?: string[];
  warnings: string[];
  notes: string[];
}

/** Runs status from outside the namespace with --netns, as an operator would. */
async function status(lab: Lab, args: readonly string[] = []): Promise<{ code: number; report: Report; text: string }> {
  const json = await runAsync(process.execPath, [MESHCAP_BIN, 'status', '--json', '--netns', lab.pod, ...args]);
  const text = await runAsync(process.execPath, [MESHCAP_BIN, 'status', '--netns', lab.pod, ...args]);
  assert.equal(json.code, text.code, 'text and JSON runs must agree on the exit code');
  let report: Report;
  try {
    report = JSON.parse(json.stdout) as Report;
  } catch {
    throw new Error(`status printed no JSON (exit ${json.code}): ${json.stdout}${json.stderr}`);
  }
  return { code: json.code, report, text: text.stdout };
}

const derivedFlag = (report: Report, backend: string, flag: string) => report.backends.find((b) => b.name === backend)?.derived?.flags.find(([f]) => f === flag)?.[1];

const plainIptablesIsNft = () => /nf_tables/.test(spawnSync('iptables', ['--version'], { encoding: 'utf8' }).stdout ?? '');

describe('meshcap status', { skip }, () => {
  let lab: Lab;
  before(() => {
    lab = Lab.create('sts');
  });
  after(async () => lab?.destroy());

  test('absent: no capture anywhere exits 1', async () => {
    const { code, report, text } = await status(lab);
    assert.equal(code, 1);
    assert.equal(report.health, 'absent');
    assert.match(text, /ABSENT/);
  });

  test('healthy: the capture is found, complete, its flags derived exactly, and it matches its config', async () => {
    const applied = await lab.meshcap(['apply', ...CONFIG, '--backend=nft']);
    assert.equal(applied.code, 0, applied.stderr);
    const plain = await status(lab);
    assert.equal(plain.code, 0, plain.text);
    assert.equal(plain.report.health, 'healthy');
    assert.equal(plain.report.active, 'iptables-nft');
    assert.equal(derivedFlag(plain.report, 'iptables-nft', '-d'), '9090,15021');
    assert.equal(derivedFlag(plain.report, 'iptables-nft', '-x'), '198.18.1.0/24');
    assert.equal(derivedFlag(plain.report, 'iptables-nft', '-m'), 'REDIRECT');
    assert.ok(plain.report.notes.some((n) => /reproduce the live rules exactly/.test(n)), plain.text);
    const compared = await status(lab, CONFIG);
    assert.equal(compared.code, 0, compared.text);
    assert.deepEqual(compared.report.drift, []);
  });

  test('drifted: another config is reported with its differences and exits 1', async () => {
    const { code, report, text } = await status(lab, OTHER);
    assert.equal(code, 1);
    assert.equal(report.health, 'drifted');
    assert.ok(report.drift!.some((d) => /198\.18\.1\.0\/24/.test(d)), text);
  });

  test('drifted: a rule deleted by hand is named', async () => {
    const deleted = await lab.exec(lab.pod, ['iptables-nft', '-t', 'nat', '-D', 'ISTIO_OUTPUT', '-d', '198.18.1.0/24', '-j', 'RETURN']);
    assert.equal(deleted.code, 0, deleted.stderr);
    const { code, report } = await status(lab, CONFIG);
    assert.equal(code, 1);
    assert.ok(report.drift!.some((d) => /missing .*198\.18\.1\.0\/24/.test(d)), JSON.stringify(report.drift));
  });

  test('incomplete: a missing hook jump is found without any config', async () => {
    const deleted = await lab.exec(lab.pod, ['iptables-nft', '-t', 'nat', '-D', 'OUTPUT', '-j', 'ISTIO_OUTPUT']);
    assert.equal(deleted.code, 0, deleted.stderr);
    const { code, report, text } = await status(lab);
    assert.equal(code, 1);
    assert.equal(report.health, 'incomplete');
    assert.match(text, /nat OUTPUT does not jump to ISTIO_OUTPUT/);
  });

  test('rules only in legacy tables: healthy, with the warning that `iptables` (nft) shows nothing', async () => {
    const cleaned = await lab.meshcap(['clean']);
    assert.equal(cleaned.code, 0, cleaned.stderr);
    const applied = await lab.meshcap(['apply', ...CONFIG, '--backend=legacy']);
    assert.equal(applied.code, 0, applied.stderr);
    const { code, report, text } = await status(lab);
    assert.equal(code, 0, text);
    assert.equal(report.active, 'iptables-legacy');
    if (plainIptablesIsNft()) {
      assert.ok(report.warnings.some((w) => /only in legacy tables; `iptables` \(nft\) shows nothing/.test(w)), text);
    }
  });

  test('mesh rules in both backends: reported as a conflict, exit 1', async () => {
    // Istio 1.5-era rules planted in iptables-nft beside the legacy capture.
    const planted = await lab.exec(lab.pod, ['iptables-nft-restore', '--noflush'], {
      input: ['*nat', ':ISTIO_REDIRECT - [0:0]', ':ISTIO_OUTPUT - [0:0]', '-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001',
        '-A OUTPUT -p tcp -j ISTIO_OUTPUT', '-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN', '-A ISTIO_OUTPUT -j ISTIO_REDIRECT', 'COMMIT', ''].join('\n'),
    });
    assert.equal(planted.code, 0, planted.stderr);
    const { code, report, text } = await status(lab);
    assert.equal(code, 1);
    assert.equal(report.health, 'conflict');
    assert.ok(report.warnings.some((w) => /mesh rules in both backends/.test(w)), text);
    assert.deepEqual(report.backends.filter((b) => b.present).map((b) => b.name).sort(), ['iptables-legacy', 'iptables-nft']);
  });

  test('TPROXY capture: routing is checked, and missing routing makes it incomplete', async () => {
    assert.equal((await lab.meshcap(['clean'])).code, 0);
    const applied = await lab.meshcap(['apply', '-m', 'TPROXY', '-b', '*', '-i', '*', '--ipv6=false', '--backend=nft']);
    assert.equal(applied.code, 0, applied.stderr);
    const healthy = await status(lab);
    assert.equal(healthy.code, 0, healthy.text);
    assert.equal(derivedFlag(healthy.report, 'iptables-nft', '-r'), '133');
    const removed = await lab.exec(lab.pod, ['ip', '-4', 'rule', 'del', 'fwmark', '1337', 'lookup', '133']);
    assert.equal(removed.code, 0, removed.stderr);
    const broken = await status(lab);
    assert.equal(broken.code, 1);
    assert.match(broken.text, /no 'ip -4 rule fwmark 1337 lookup TABLE'/);
  });

  test('native nftables capture is found and derived', async () => {
    assert.equal((await lab.meshcap(['clean'])).code, 0);
    const applied = await lab.meshcap(['apply', ...CONFIG, '--native-nftables']);
    assert.equal(applied.code, 0, applied.stderr);
    const { code, report, text } = await status(lab, [...CONFIG, '--native-nftables']);
    assert.equal(code, 0, text);
    assert.equal(report.active, 'nftables');
    assert.deepEqual(report.drift, []);
    assert.equal(derivedFlag(report, 'nftables', '-d'), '9090,15021');
  });
});

describe('meshcap status usage errors', { skip }, () => {
  test('an unknown namespace exits 2 with one line', async () => {
    const result = await runAsync(process.execPath, [MESHCAP_BIN, 'status', '--netns', 'mc-no-such-namespace-xyz']);
    assert.equal(result.code, 2, result.stderr);
    assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
    assert.doesNotMatch(result.stderr, /\n\s+at /);
  });
});
