/**
 * The capture engine (read -> planCapture -> applyCapture) against the netfilter
 * fake: planning, re-runs, old and partial state, foreign rules, the retry loop,
 * the backend fallback and the cleanup after a partial commit, detection
 * precedence, native nftables, routes and clean. No root, no namespaces: the
 * fake (checked against the real tools in test/integration/fake-netfilter.test.ts)
 * stands in for the kernel.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { chooseBackend, detectBackend, snapshotBackend } from '../../src/backend/detect.js';
import { ExitCode, MeshcapError } from '../../src/errors.js';
import { renderDryRun } from '../../src/reconcile/dry-run.js';
import { applyCapture, cleanEverything, dryRunState, planCapture, readCaptureState, runCapture } from '../../src/reconcile/engine.js';
import { renderIstioRestore } from '../../src/render/iptables.js';
import { buildRuleset } from '../../src/rules/build.js';
import { liveDifferences } from '../../src/state/compare.js';
import { parseNftListing } from '../../src/state/nft-listing.js';
import { desiredListing, diffListings, sameListing } from '../../src/state/nft-view.js';
import { nftTableOps } from '../../src/render/nftables.js';
import { nftTransaction } from '../../src/reconcile/nftables.js';
import { type System, inputText, knownInput } from '../../src/backend/system.js';
import { analyzeStatus } from '../../src/status/analyze.js';
import { readNamespace } from '../../src/status/gather.js';
import { ruleDifferences } from '../../src/verify/run.js';
import { configOf, engineOptions, ISTIO_INIT_ARGS, memoryLogger } from '../helpers/capture.js';
import { FakeNetfilter, type Variant } from '../helpers/fake-netfilter.js';

const ARGS = [...ISTIO_INIT_ARGS, '--ipv6=false'];
const restores = (sys: FakeNetfilter) => sys.calls.filter((call) => /-restore$/.test(call.file));
const meshLines = (save: string) => save.split('\n').filter((line) => line.includes('ISTIO_'));

/** The capture the fake holds for a config, compared as verify compares it. */
function differences(sys: FakeNetfilter, args: readonly string[], variant: Variant = 'nft'): string[] {
  const ruleset = buildRuleset(configOf(args));
  return liveDifferences(ruleset, { kind: 'iptables', variant, saves: { ipv4: sys.save(variant, 'ipv4'), ipv6: sys.save(variant, 'ipv6') } });
}

/** Istio's own restore input for a config, as an old istio-init would have left it. */
const istioLeftovers = (args: readonly string[], family: 'ipv4' | 'ipv6' = 'ipv4') => `${renderIstioRestore(buildRuleset(configOf(args)), family).join('\n')}\n`;

async function restoreAs(sys: FakeNetfilter, variant: Variant, input: string) {
  const result = await sys.run(`/usr/sbin/iptables-${variant}-restore`, ['--noflush'], { input });
  assert.equal(result.code, 0, result.stderr);
}

describe('engine: plan and apply on the fake', () => {
  test('a fresh namespace gets Istio restore input (with -N), verified; a re-run plans a no-op and writes nothing', async () => {
    const sys = new FakeNetfilter();
    const report = await runCapture(configOf(ARGS), engineOptions(sys));
    assert.equal(report.backend, 'iptables-nft');
    assert.equal(report.families[0]?.changed, true);
    assert.match(restores(sys)[0]!.input!, /^-N ISTIO_OUTPUT$/m);
    assert.deepEqual(differences(sys, ARGS), []);

    const config = configOf(ARGS);
    const plan = planCapture(config, await readCaptureState(config, sys, memoryLogger()));
    assert.ok(plan.kind === 'iptables' && plan.families.every((step) => step.plan?.noop));
    const before = restores(sys).length;
    const again = await applyCapture(plan, engineOptions(sys));
    assert.equal(again.changed, false);
    assert.equal(restores(sys).length, before, 'a no-op re-run runs no restore');
  });

  test('re-run over an old istio-init capture (the -N that fails Istio) reconciles in one restore, no error', async () => {
    const sys = new FakeNetfilter();
    await restoreAs(sys, 'nft', istioLeftovers([...ARGS.slice(0, -1), '-i', '10.0.0.0/8']));
    // Istio's own input, run again, fails as the tool does: that is the CrashLoopBackOff.
    const rerun = await sys.run('/usr/sbin/iptables-nft-restore', ['--noflush'], { input: istioLeftovers(ARGS) });
    assert.equal(rerun.code, 1);
    assert.match(rerun.stderr, /line \d+ failed: Chain already exists/);

    const report = await runCapture(configOf(ARGS), engineOptions(sys));
    assert.equal(report.families[0]?.attempts, 1);
    assert.doesNotMatch(restores(sys).at(-1)!.input!, /^-N /m, 'a reconcile declares chains with :CHAIN, which never fails');
    assert.deepEqual(differences(sys, ARGS), []);
  });

  test('partial state (a chain with no jump into it) and foreign rules: converges, and the foreign rules stay byte for byte', async () => {
    const sys = new FakeNetfilter();
    const foreign = '*nat\n:KUBE-SERVICES - [0:0]\n-A PREROUTING -j KUBE-SERVICES\n-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m tcp --dport 443 -j RETURN\nCOMMIT\n';
    await restoreAs(sys, 'nft', foreign);
    await restoreAs(sys, 'nft', '*nat\n:ISTIO_OUTPUT - [0:0]\n-A ISTIO_OUTPUT -j RETURN\nCOMMIT\n');
    const foreignBefore = sys.save('nft', 'ipv4').split('\n').filter((l) => /KUBE/.test(l));
    await runCapture(configOf(ARGS), engineOptions(sys));
    assert.deepEqual(differences(sys, ARGS), []);
    assert.deepEqual(sys.save('nft', 'ipv4').split('\n').filter((l) => /KUBE/.test(l)), foreignBefore);
  });

  test('a stale mesh chain a foreign rule still jumps to is flushed and kept, and read-back accepts it', async () => {
    const sys = new FakeNetfilter();
    await restoreAs(sys, 'nft', '*nat\n:ISTIO_OLD - [0:0]\n:FOREIGN - [0:0]\n-A ISTIO_OLD -j RETURN\n-A FOREIGN -j ISTIO_OLD\nCOMMIT\n');
    const report = await runCapture(configOf(ARGS), engineOptions(sys));
    assert.equal(report.families[0]?.changed, true);
    const save = sys.save('nft', 'ipv4');
    assert.match(save, /^:ISTIO_OLD - /m);
    assert.doesNotMatch(save, /^-A ISTIO_OLD /m);
    assert.match(save, /^-A FOREIGN -j ISTIO_OLD$/m);
  });

  test('a config change replaces the capture: chains the new config lacks are removed', async () => {
    const sys = new FakeNetfilter();
    await runCapture(configOf([...ARGS, '--redirect-dns', '--dns-servers-v4', '198.18.0.53']), engineOptions(sys));
    assert.match(sys.save('nft', 'ipv4'), /ISTIO_OUTPUT_DNS/);
    await runCapture(configOf(ARGS), engineOptions(sys));
    assert.doesNotMatch(sys.save('nft', 'ipv4'), /ISTIO_OUTPUT_DNS/);
    assert.deepEqual(differences(sys, ARGS), []);
  });

  test('IPv6: both families are planned and applied; with IPv6 disabled in the namespace, the IPv6 tables are not touched', async () => {
    const dual = new FakeNetfilter();
    await runCapture(configOf([...ISTIO_INIT_ARGS, '--ipv6=true']), engineOptions(dual));
    assert.ok(meshLines(dual.save('nft', 'ipv6')).length > 0);
    assert.ok(dual.hasLoAddress('::6/128'), '::6 on lo for the IPv6 passthrough');

    const noV6 = new FakeNetfilter({ ipv6Disabled: true });
    const report = await runCapture(configOf([...ISTIO_INIT_ARGS]), engineOptions(noV6));
    assert.deepEqual(report.families.map((f) => f.family), ['ipv4']);
    assert.equal(restores(noV6).filter((c) => c.file.startsWith('ip6tables')).length, 0);
  });
});

describe('engine: found by the fake', () => {
  test("an IPv4-compatible IPv6 DNS server (Istio's ::127.0.0.53) reads back as iptables prints it: applied, then a no-op", async () => {
    // Before the save form spelled it ::127.0.0.53, read-back saw a difference on every attempt: exit 6.
    const sys = new FakeNetfilter();
    const args = ['-i', '*', '--redirect-dns', '--ipv6=true', '--dns-servers-v6', '::127.0.0.53'];
    const first = await runCapture(configOf(args), engineOptions(sys));
    assert.ok(first.families.every((f) => f.attempts === 1));
    assert.match(sys.save('nft', 'ipv6'), /^-A ISTIO_OUTPUT_DNS -d ::127\.0\.0\.53\/128 /m);
    assert.equal((await runCapture(configOf(args), engineOptions(sys))).changed, false);
  });
});

describe('engine: concurrent writers and retries', () => {
  test('another run creates the chains between our read and our restore: the -N fails, we re-read and converge', async () => {
    const sys = new FakeNetfilter();
    sys.onNextRestore((fake) => fake.writeAs('nft', 'ipv4', istioLeftovers([...ARGS.slice(0, -1), '-i', '10.0.0.0/8'])));
    const report = await runCapture(configOf(ARGS), engineOptions(sys));
    assert.equal(report.families[0]?.attempts, 2);
    assert.match(restores(sys)[0]!.input!, /^-N ISTIO_OUTPUT$/m, 'the first attempt planned a fresh install');
    assert.doesNotMatch(restores(sys)[1]!.input!, /^-N /m, 'the second reconciles what the other run wrote');
    assert.deepEqual(differences(sys, ARGS), []);
  });

  test('another writer removes a rule we planned to delete: the -D fails, we re-read and converge', async () => {
    const sys = new FakeNetfilter();
    await restoreAs(sys, 'legacy', istioLeftovers([...ARGS.slice(0, -1), '-i', '10.0.0.0/8']));
    sys.onNextRestore((fake) => {
      const save = fake.save('legacy', 'ipv4').replace(/^-A OUTPUT -j ISTIO_OUTPUT\n/m, '');
      fake.load('legacy', 'ipv4', save);
    });
    const report = await runCapture(configOf([...ARGS, '--backend=legacy']), engineOptions(sys));
    assert.equal(report.backend, 'iptables-legacy');
    assert.equal(report.families[0]?.attempts, 2);
    assert.deepEqual(differences(sys, ARGS, 'legacy'), []);
  });

  test('a writer that rewrites our rules after every restore: verify fails with exit 6 and the differences, after the attempts run out', async () => {
    const sys = new FakeNetfilter();
    sys.afterEveryRestore((fake) => fake.load('nft', 'ipv4', fake.save('nft', 'ipv4').replace(/^-A ISTIO_OUTPUT -d 127\.0\.0\.1\/32 -j RETURN\n/m, '')));
    await assert.rejects(runCapture(configOf(ARGS), engineOptions(sys)), (error: unknown) => {
      assert.ok(error instanceof MeshcapError);
      assert.equal(error.exitCode, ExitCode.VerifyFailed);
      assert.match(error.output ?? '', /missing +-A ISTIO_OUTPUT -d 127\.0\.0\.1\/32 -j RETURN/);
      return true;
    });
    assert.equal(restores(sys).length, 8, 'eight attempts, then it gives up');
  });

  test('the xtables lock held by another process: exit 5, naming the lock', async () => {
    const sys = new FakeNetfilter().holdXtablesLock();
    await assert.rejects(runCapture(configOf([...ARGS, '--backend=legacy']), engineOptions(sys)), (error: unknown) => {
      assert.ok(error instanceof MeshcapError && error.exitCode === ExitCode.LockTimeout, String(error));
      assert.match(error.what, /xtables lock/);
      return true;
    });
  });
});

describe('engine: backend fallback and cleanup after a partial commit', () => {
  test('the chosen backend lacks an extension: it falls back to the other, once', async () => {
    const sys = new FakeNetfilter().withoutExtension('nft', 'owner');
    const log = memoryLogger();
    const report = await runCapture(configOf(ARGS), engineOptions(sys, log));
    assert.equal(report.backend, 'iptables-legacy');
    assert.ok(report.notes.some((note) => /fell back from iptables-nft to iptables-legacy/.test(note)));
    assert.ok(log.lines.some((line) => /^warn: iptables-nft cannot apply the rules .*owner/.test(line)));
    assert.deepEqual(differences(sys, ARGS, 'legacy'), []);
    assert.deepEqual(meshLines(sys.save('nft', 'ipv4')), []);
  });

  test('IPv4 committed on the chosen backend before IPv6 failed there: after the fallback, the IPv4 leftovers are removed', async () => {
    const sys = new FakeNetfilter().withoutTable('nft', 'nat', 'ipv6');
    const args = [...ISTIO_INIT_ARGS, '--ipv6=true'];
    const report = await runCapture(configOf(args), engineOptions(sys));
    assert.equal(report.backend, 'iptables-legacy');
    assert.deepEqual(meshLines(sys.save('nft', 'ipv4')), [], 'the partial IPv4 commit on iptables-nft is gone');
    assert.deepEqual(differences(sys, args, 'legacy'), []);
  });

  test('a pinned backend does not fall back: the missing table is the error (exit 3), naming the module and the other backend', async () => {
    const sys = new FakeNetfilter().withoutTable('legacy', 'nat');
    await assert.rejects(runCapture(configOf([...ARGS, '--backend=legacy']), engineOptions(sys)), (error: unknown) => {
      assert.ok(error instanceof MeshcapError && error.exitCode === ExitCode.Unsupported, String(error));
      assert.equal(error.otherBackendMayWork, true);
      assert.match(error.fix, /modprobe iptable_nat.*--backend=nft/);
      return true;
    });
  });

  test('mesh rules in the other backend are removed so the capture lives in one place', async () => {
    const sys = new FakeNetfilter();
    await restoreAs(sys, 'legacy', istioLeftovers(ARGS));
    await restoreAs(sys, 'nft', istioLeftovers(ARGS));
    await restoreAs(sys, 'nft', '*filter\n-A INPUT -s 198.18.0.9/32 -j DROP\nCOMMIT\n');
    const report = await runCapture(configOf(ARGS), engineOptions(sys));
    assert.equal(report.backend, 'iptables-nft', 'the backend with more rules overall is kept');
    assert.deepEqual(meshLines(sys.save('legacy', 'ipv4')), []);
    assert.ok(report.notes.some((note) => /removed stale mesh rules from iptables-legacy/.test(note)));
  });
});

describe('detection precedence (pure chooseBackend over fake snapshots)', () => {
  async function detect(setup: (sys: FakeNetfilter) => Promise<void>, choice: 'auto' | 'legacy' | 'nft' = 'auto', options = {}) {
    const sys = new FakeNetfilter(options);
    await setup(sys);
    return detectBackend(sys, choice, `--backend=${choice}`);
  }
  const none = async () => {};

  test('pinned beats everything', async () => {
    const detection = await detect((sys) => restoreAs(sys, 'nft', istioLeftovers(ARGS)), 'legacy');
    assert.equal(detection.chosen.variant, 'legacy');
    assert.equal(detection.reason, 'pinned by --backend=legacy');
  });
  test('the backend that holds mesh rules', async () => {
    const detection = await detect((sys) => restoreAs(sys, 'legacy', istioLeftovers(ARGS)));
    assert.equal(detection.chosen.variant, 'legacy');
    assert.match(detection.reason, /iptables-legacy already holds \d+ mesh rules/);
  });
  test('then the backend that holds any rules', async () => {
    const detection = await detect((sys) => restoreAs(sys, 'legacy', '*filter\n-A INPUT -j ACCEPT\nCOMMIT\n'));
    assert.equal(detection.chosen.variant, 'legacy');
    assert.match(detection.reason, /only iptables-legacy holds rules/);
  });
  test('then nft; reading creates no legacy table (Istio\'s probe did, istio#61020)', async () => {
    const sys = new FakeNetfilter();
    const detection = await detectBackend(sys, 'auto', '--backend=auto');
    assert.equal(detection.chosen.variant, 'nft');
    assert.equal(sys.readFile('/proc/net/ip_tables_names'), '');
    assert.equal(sys.calls.filter((c) => c.file === 'iptables-legacy-save').length, 0, 'no legacy table: nothing to read');
    await none();
  });
  test('only legacy binaries: legacy, and the reason says why nft is not usable', async () => {
    const legacyOnly = ['iptables-legacy-save', 'iptables-legacy-restore', 'ip6tables-legacy-save', 'ip6tables-legacy-restore', 'ip'];
    const detection = await detect(none, 'auto', { binaries: legacyOnly });
    assert.equal(detection.chosen.variant, 'legacy');
    assert.match(detection.reason, /nf_tables is not usable/);
  });
  test('plain iptables-save names are resolved by their --version', async () => {
    const sys = new FakeNetfilter({ binaries: ['iptables-save', 'iptables-restore', 'ip6tables-save', 'ip6tables-restore'], plain: 'legacy' });
    const [legacy, nft] = await Promise.all([snapshotBackend(sys, 'legacy'), snapshotBackend(sys, 'nft')]);
    assert.equal(legacy.binaries.ipv4?.save, '/usr/sbin/iptables-save');
    assert.equal(nft.binaries.ipv4, undefined);
    assert.equal(chooseBackend(legacy, nft, 'auto', '').chosen.variant, 'legacy');
  });
});

describe('native nftables on the fake', () => {
  const NATIVE = [...ARGS, '--native-nftables'];
  test('one transaction; a re-run runs none; mesh rules left in iptables are removed', async () => {
    const sys = new FakeNetfilter();
    await restoreAs(sys, 'legacy', istioLeftovers(ARGS));
    const report = await runCapture(configOf(NATIVE), engineOptions(sys));
    assert.equal(report.backend, 'nftables');
    assert.ok(parseNftListing(sys.nftListing()).has('istio-proxy-nat'));
    assert.deepEqual(meshLines(sys.save('legacy', 'ipv4')), []);
    const transactions = () => sys.calls.filter((c) => c.file === 'nft' && c.args[0] === '-f').length;
    assert.equal(transactions(), 1);
    const again = await runCapture(configOf(NATIVE), engineOptions(sys));
    assert.equal(again.changed, false);
    assert.equal(transactions(), 1);
  });

  test('verify and the engine agree on the fake: no differences after apply; one after another writer deletes a rule', async () => {
    const sys = new FakeNetfilter();
    await runCapture(configOf(NATIVE), engineOptions(sys));
    assert.deepEqual((await ruleDifferences(configOf(NATIVE), sys)).differences, []);
    sys.loadNft('delete table inet istio-proxy-nat\nadd table inet istio-proxy-nat\n');
    assert.ok((await ruleDifferences(configOf(NATIVE), sys)).differences.length > 0);
  });

  test('the read-back fails with exit 6 when another writer changes the tables right after the transaction', async () => {
    const fake = new FakeNetfilter();
    // Another writer adds a rule to a mesh chain as soon as meshcap's transaction has run.
    const sys: System = {
      run: async (file, args, options) => {
        const result = await fake.run(file, args, options);
        if (args.join(' ') === '-f -' && /^add table inet istio-proxy-nat$/m.test(inputText(await knownInput(options?.input)) ?? '')) fake.loadNft('add rule inet istio-proxy-nat istio-output ip daddr 198.18.0.9 counter return\n');
        return result;
      },
      which: (name) => fake.which(name),
      readFile: (path) => fake.readFile(path),
      readBytes: () => fake.readBytes(),
      readLink: (path) => fake.readLink(path),
    };
    await assert.rejects(runCapture(configOf([...NATIVE, '-x', '198.18.0.0/24,198.18.1.0/24']), engineOptions(sys)), (error: unknown) => {
      assert.ok(error instanceof MeshcapError && error.exitCode === ExitCode.VerifyFailed, String(error));
      assert.match(error.output ?? '', /istio-output: unexpected ip daddr 198\.18\.0\.9 counter return/);
      return true;
    });
  });

  test('sameListing (rules compared as written and as listed) agrees with diffListings of the normalised listings', () => {
    const ops = nftTableOps(buildRuleset(configOf([...NATIVE, '-x', '198.18.0.1/24,198.18.1.0/24,2001:db8::/32'])));
    const fake = new FakeNetfilter().loadNft(nftTransaction(ops, new Map()));
    const listed = fake.nftListing().replace(/\bcounter packets 0 bytes 0\b/g, 'counter');
    const cases: [string, string][] = [
      ['as nft lists it (198.18.0.1/24 written, 198.18.0.0/24 listed)', listed],
      ['an exclude changed', listed.replace('198.18.1.0/24', '198.18.2.0/24')],
      ['a rule gone', listed.replace(/^\s*ip daddr 198\.18\.1\.0\/24 counter return\n/m, '')],
      ['two rules swapped', listed.replace(/(\s*ip daddr 198\.18\.0\.0\/24 counter return\n)(\s*ip daddr 198\.18\.1\.0\/24 counter return\n)/, '$2$1')],
      ['a table gone', listed.replace(/^table inet istio-proxy-nat \{[^]*?\n\}\n/m, '')],
      ['a foreign chain in a mesh table', listed.replace(/^table inet istio-proxy-nat \{\n/m, 'table inet istio-proxy-nat {\n\tchain extra {\n\t}\n\n')],
    ];
    for (const [name, text] of cases) {
      const same = sameListing(desiredListing(ops, false), parseNftListing(text, false));
      assert.equal(same, diffListings(desiredListing(ops), parseNftListing(text)).length === 0, name);
      assert.equal(same, name.startsWith('as nft lists it'), name);
    }
  });

  test('iptables mode removes native mesh tables that would capture a second time', async () => {
    const sys = new FakeNetfilter();
    await runCapture(configOf(NATIVE), engineOptions(sys));
    const report = await runCapture(configOf(ARGS), engineOptions(sys));
    assert.ok(report.notes.some((note) => /removed nftables tables istio-proxy-nat/.test(note)));
    assert.equal(parseNftListing(sys.nftListing()).has('istio-proxy-nat'), false);
  });
});

describe('routes and clean on the fake (no root needed)', () => {
  const TPROXY = [...ISTIO_INIT_ARGS, '-m', 'TPROXY', '--ipv6=false'];
  test('TPROXY policy routing is added once; a re-run adds no second ip rule', async () => {
    const sys = new FakeNetfilter();
    const first = await runCapture(configOf(TPROXY), engineOptions(sys));
    assert.ok(first.notes.includes('ip -4 rule fwmark 1337 lookup 133'));
    assert.match(sys.ipRuleShow('ipv4'), /^32765:\tfrom all fwmark 0x539 lookup 133$/m);
    assert.match(sys.routeShow('ipv4', '133') ?? '', /^local default dev lo/);
    const second = await runCapture(configOf(TPROXY), engineOptions(sys));
    assert.deepEqual(second.notes, []);
    assert.equal(sys.ipRuleShow('ipv4').match(/fwmark/g)?.length, 1);
  });

  test('meshcap clean removes the capture from every backend, the nft tables and the TPROXY routes; foreign rules stay; a second clean finds nothing', async () => {
    const sys = new FakeNetfilter();
    await runCapture(configOf(TPROXY), engineOptions(sys));
    await restoreAs(sys, 'legacy', `${istioLeftovers(ARGS)}*filter\n-A INPUT -s 198.18.0.9/32 -j DROP\nCOMMIT\n`);
    sys.loadNft('add table inet istio-proxy-raw\n');
    const removed = await cleanEverything({ ...engineOptions(sys), lockTimeoutSeconds: 1 });
    assert.ok(removed.some((r) => /iptables-legacy IPv4/.test(r)));
    assert.ok(removed.some((r) => /iptables-nft IPv4/.test(r)));
    assert.ok(removed.includes('nftables table inet istio-proxy-raw'));
    assert.ok(removed.some((r) => /fwmark 0x539 lookup 133/.test(r)));
    for (const variant of ['legacy', 'nft'] as const) assert.deepEqual(meshLines(sys.save(variant, 'ipv4')), []);
    assert.match(sys.save('legacy', 'ipv4'), /^-A INPUT -s 198\.18\.0\.9\/32 -j DROP$/m);
    assert.doesNotMatch(sys.ipRuleShow('ipv4'), /fwmark/);
    assert.deepEqual(await cleanEverything({ ...engineOptions(sys), lockTimeoutSeconds: 1 }), []);
  });

  test('--cleanup-only removes this backend\'s capture and routes', async () => {
    const sys = new FakeNetfilter();
    await runCapture(configOf(TPROXY), engineOptions(sys));
    const report = await runCapture(configOf([...TPROXY, '--cleanup-only']), engineOptions(sys));
    assert.equal(report.changed, true);
    assert.deepEqual(meshLines(sys.save('nft', 'ipv4')), []);
    assert.doesNotMatch(sys.ipRuleShow('ipv4'), /fwmark/);
  });
});

describe('the plan is data', () => {
  test('planCapture is pure: the same state gives the same plan, and the dry run prints it without a System', () => {
    const config = configOf(ARGS);
    const a = planCapture(config, dryRunState());
    const b = planCapture(config, dryRunState());
    assert.deepEqual(a, b);
    const trace = renderDryRun(a).split('\n');
    assert.deepEqual([trace[0], trace[1]], ['iptables-save', 'ip6tables-save']);
    assert.equal(trace.at(-2), 'iptables-save');
  });

  test('a plan made on a state that has already changed still converges when applied (the first attempt fails, the second re-plans)', async () => {
    const sys = new FakeNetfilter();
    const config = configOf(ARGS);
    const plan = planCapture(config, await readCaptureState(config, sys, memoryLogger()));
    await restoreAs(sys, 'nft', istioLeftovers([...ARGS.slice(0, -1), '-i', '10.0.0.0/8']));
    const report = await applyCapture(plan, engineOptions(sys));
    assert.equal(report.families[0]?.attempts, 2);
    assert.deepEqual(differences(sys, ARGS), []);
  });
});

describe('status and verify read the fake as they read a namespace', () => {
  test('healthy after apply; drift against another config; incomplete when a hook jump is gone; absent after clean', async () => {
    const sys = new FakeNetfilter();
    const config = configOf(ARGS);
    await runCapture(config, engineOptions(sys));
    let report = analyzeStatus({ read: await readNamespace(sys), config, ruleset: buildRuleset(config) });
    assert.equal(report.health, 'healthy', report.summary);
    assert.equal(report.active, 'iptables-nft');
    assert.deepEqual((await ruleDifferences(config, sys)).differences, []);

    const other = configOf([...ARGS.slice(0, -1), '-i', '10.0.0.0/8', '--ipv6=false']);
    report = analyzeStatus({ read: await readNamespace(sys), config: other, ruleset: buildRuleset(other) });
    assert.equal(report.health, 'drifted');
    assert.ok(report.drift?.some((line) => /10\.0\.0\.0\/8/.test(line)), report.drift?.join('\n'));

    sys.load('nft', 'ipv4', sys.save('nft', 'ipv4').replace(/^-A OUTPUT -j ISTIO_OUTPUT\n/m, ''));
    report = analyzeStatus({ read: await readNamespace(sys) });
    assert.equal(report.health, 'incomplete');
    assert.ok(report.backends.find((b) => b.name === 'iptables-nft')?.problems.some((p) => /nat OUTPUT does not jump to ISTIO_OUTPUT/.test(p)));
    assert.ok((await ruleDifferences(config, sys)).differences.some((line) => /OUTPUT: missing +-A OUTPUT -j ISTIO_OUTPUT/.test(line)));

    await cleanEverything({ ...engineOptions(sys), lockTimeoutSeconds: 1 });
    assert.equal(analyzeStatus({ read: await readNamespace(sys) }).health, 'absent');
  });

  test('mesh rules in both backends are a conflict, and the plain iptables is named when it shows nothing', async () => {
    const sys = new FakeNetfilter({ plain: 'nft' });
    await restoreAs(sys, 'legacy', istioLeftovers(ARGS));
    let report = analyzeStatus({ read: await readNamespace(sys) });
    assert.ok(report.warnings.some((w) => /rules exist only in legacy tables; `iptables` \(nft\) shows nothing/.test(w)), report.warnings.join('\n'));
    await restoreAs(sys, 'nft', istioLeftovers(ARGS));
    report = analyzeStatus({ read: await readNamespace(sys) });
    assert.equal(report.health, 'conflict');
  });
});
