/**
 * The apply engine against the real kernel, on iptables-legacy, iptables-nft
 * and native nftables: real connections prove capture and bypass; re-runs,
 * config changes, old Istio leftovers, partial state, concurrency and foreign
 * rules all converge.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { FAR_V4, Lab, OUTSIDE_V4, POD_V4, labSkipReason, meshLines } from '../helpers/netns.js';

const skip = labSkipReason();

/** `sets`: native nftables with --cidr-sets, which must capture exactly as the rule-per-entry layout does. */
type Mode = 'legacy' | 'nft' | 'native' | 'sets';
const MODES: readonly Mode[] = ['legacy', 'nft', 'native', 'sets'];
const isNative = (mode: Mode): mode is 'native' | 'sets' => mode === 'native' || mode === 'sets';

const backendArgs = (mode: Mode) => (mode === 'sets' ? ['--native-nftables', '--cidr-sets'] : mode === 'native' ? ['--native-nftables'] : [`--backend=${mode}`]);

/** What the injector passes by default, plus an excluded CIDR and inbound port we can probe. */
const CONFIG_A = ['-p', '15001', '-z', '15006', '-u', '1337', '-g', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '198.18.1.0/24', '-o', '8081,8082', '-b', '*', '-d', '9090,15021', '--ipv6=false'];
/** A different config: outbound to one CIDR only, inbound on one port. */
const CONFIG_B = ['-p', '15001', '-z', '15006', '-u', '1337', '-i', '198.18.0.0/24', '-b', '8080', '--ipv6=false'];

/** The mesh part of the state, in a form comparable across runs. */
async function meshState(lab: Lab, mode: Mode): Promise<string> {
  if (isNative(mode)) return (await lab.nftRuleset()).split('table ').filter((t) => t.startsWith('inet istio-proxy-')).join('table ');
  return [await lab.save(mode, 4), await lab.save(mode, 6)].join('\n');
}

async function appliedOk(lab: Lab, args: readonly string[]) {
  const result = await lab.meshcap(['apply', ...args]);
  assert.equal(result.code, 0, `meshcap apply ${args.join(' ')} failed:\n${result.stderr}`);
  return result;
}

/** State a fresh namespace gets for the same config: the reference for convergence. */
async function freshStateFor(mode: Mode, args: readonly string[]): Promise<string> {
  const lab = Lab.create('ref');
  try {
    await appliedOk(lab, args);
    return await meshState(lab, mode);
  } finally {
    await lab.destroy();
  }
}

for (const mode of MODES) {
  describe(`apply on ${mode === 'sets' ? 'native nftables with --cidr-sets' : mode === 'native' ? 'native nftables' : `iptables-${mode}`}`, { skip }, () => {
    let lab: Lab;
    const cfgA = [...CONFIG_A, ...backendArgs(mode)];
    const cfgB = [...CONFIG_B, ...backendArgs(mode)];

    before(async () => {
      lab = Lab.create(mode.slice(0, 3));
      await lab.serve(lab.outside, [8080, 8081], 'outside-app');
      await lab.serve(lab.pod, [15001, 15006], 'proxy');
      await lab.serve(lab.pod, [9090], 'pod-app');
    });
    after(async () => lab?.destroy());

    test('without capture, connections go where they are addressed (control)', async () => {
      const out = await lab.connect(lab.pod, OUTSIDE_V4, 8080);
      assert.equal(out.reply, `outside-app ${OUTSIDE_V4} 8080`);
      const inbound = await lab.connect(lab.outside, POD_V4, 9090);
      assert.equal(inbound.reply, `pod-app ${POD_V4} 9090`);
    });

    test('captures outbound and inbound, exempts the proxy uid and gid, honours excluded ports and CIDRs', async () => {
      await appliedOk(lab, cfgA);
      const app = await lab.connect(lab.pod, OUTSIDE_V4, 8080);
      assert.match(app.reply ?? app.error ?? '', /^proxy \S+ 15001$/, 'app traffic must land on the outbound capture port');
      const proxyUid = await lab.connect(lab.pod, OUTSIDE_V4, 8080, { uid: 1337, gid: 1337 });
      assert.equal(proxyUid.reply, `outside-app ${OUTSIDE_V4} 8080`, 'the proxy uid must bypass the capture');
      const proxyGid = await lab.connect(lab.pod, OUTSIDE_V4, 8080, { uid: 2000, gid: 1337 });
      assert.equal(proxyGid.reply, `outside-app ${OUTSIDE_V4} 8080`, 'the proxy gid must bypass the capture');
      const otherUser = await lab.connect(lab.pod, OUTSIDE_V4, 8080, { uid: 2000, gid: 2000 });
      assert.match(otherUser.reply ?? '', / 15001$/, 'any other user is captured');
      const inbound = await lab.connect(lab.outside, POD_V4, 8080);
      assert.equal(inbound.reply, `proxy ${POD_V4} 15006`, 'inbound must land on the inbound capture port');
      const excludedPort = await lab.connect(lab.outside, POD_V4, 9090);
      assert.equal(excludedPort.reply, `pod-app ${POD_V4} 9090`, 'an excluded inbound port reaches the app');
      const excludedCidr = await lab.connect(lab.pod, FAR_V4, 8080);
      assert.equal(excludedCidr.reply, `outside-app ${FAR_V4} 8080`, 'an excluded CIDR is not captured');
      const excludedOutPort = await lab.connect(lab.pod, OUTSIDE_V4, 8081);
      assert.equal(excludedOutPort.reply, `outside-app ${OUTSIDE_V4} 8081`, 'an excluded outbound port is not captured');
    });

    test('three consecutive runs exit 0 and leave identical rules', async () => {
      const first = await meshState(lab, mode);
      assert.ok(first.includes(isNative(mode) ? 'istio-output' : 'ISTIO_OUTPUT'));
      // The excluded CIDR and localhost are one set lookup under --cidr-sets, one rule each otherwise.
      if (mode === 'sets') assert.match(first, /ip daddr @istio-exclude-v4 counter/);
      if (mode === 'native') assert.doesNotMatch(first, /@istio-exclude/);
      for (let i = 0; i < 3; i++) {
        const result = await appliedOk(lab, cfgA);
        assert.match(result.stderr, /already in place, nothing to do/);
        assert.equal(await meshState(lab, mode), first);
      }
    });

    test('a changed config converges to exactly what a fresh namespace gets, with one jump per hook', async () => {
      await appliedOk(lab, cfgB);
      const state = await meshState(lab, mode);
      assert.equal(state, await freshStateFor(mode, cfgB));
      if (!isNative(mode)) {
        assert.equal(state.split('\n').filter((l) => l === '-A OUTPUT -j ISTIO_OUTPUT').length, 1);
        assert.equal(state.split('\n').filter((l) => l === '-A PREROUTING -p tcp -j ISTIO_INBOUND').length, 1);
        assert.doesNotMatch(state, /198\.18\.1\.0\/24/, 'the old config\'s excluded CIDR is gone');
      }
      const inbound = await lab.connect(lab.outside, POD_V4, 9090);
      assert.equal(inbound.reply, `pod-app ${POD_V4} 9090`, 'port 9090 is no longer captured under config B');
      const captured = await lab.connect(lab.outside, POD_V4, 8080);
      assert.equal(captured.reply, `proxy ${POD_V4} 15006`);
    });

    test('six concurrent runs all succeed and converge', async () => {
      await lab.meshcap(['clean']);
      const runs = await Promise.all(Array.from({ length: 6 }, () => lab.meshcap(['apply', ...cfgA])));
      runs.forEach((run, i) => assert.equal(run.code, 0, `run ${i} failed:\n${run.stderr}`));
      assert.equal(await meshState(lab, mode), await freshStateFor(mode, cfgA));
      const app = await lab.connect(lab.pod, OUTSIDE_V4, 8080);
      assert.match(app.reply ?? '', / 15001$/);
    });

    test('clean removes the capture, and a second clean is a no-op', async () => {
      const first = await lab.meshcap(['clean']);
      assert.equal(first.code, 0, first.stderr);
      const state = await meshState(lab, mode);
      assert.deepEqual(meshLines(state), []);
      assert.doesNotMatch(state, /istio-proxy-/);
      const second = await lab.meshcap(['clean']);
      assert.equal(second.code, 0, second.stderr);
      assert.match(second.stderr, /nothing to do/);
      const direct = await lab.connect(lab.pod, OUTSIDE_V4, 8080);
      assert.equal(direct.reply, `outside-app ${OUTSIDE_V4} 8080`);
    });
  });
}

describe('convergence from foreign, old and partial state (iptables)', { skip }, () => {
  for (const variant of ['legacy', 'nft'] as const) {
    test(`${variant}: foreign rules survive apply and clean byte for byte`, async () => {
      const lab = Lab.create(`f${variant.slice(0, 1)}`);
      try {
        const foreign = [
          '*nat',
          ':KUBE-FOO - [0:0]',
          '-A OUTPUT -p tcp --dport 123 -j ACCEPT',
          '-A PREROUTING -s 198.19.0.0/16 -j KUBE-FOO',
          '-A KUBE-FOO -p udp -j RETURN',
          'COMMIT',
          '*filter',
          '-A INPUT -p tcp --dport 22 -j ACCEPT',
          'COMMIT',
          '',
        ].join('\n');
        const loaded = await lab.exec(lab.pod, [`iptables-${variant}-restore`, '--noflush'], { input: foreign });
        assert.equal(loaded.code, 0, loaded.stderr);
        const foreignLines = (save: string) => save.split('\n').filter((l) => /KUBE-FOO|dport 123|dport 22/.test(l));
        const before = foreignLines(await lab.save(variant));
        assert.equal(before.length, 5);
        await appliedOk(lab, [...CONFIG_A, `--backend=${variant}`]);
        assert.deepEqual(foreignLines(await lab.save(variant)), before);
        assert.ok(meshLines(await lab.save(variant)).length > 10);
        const cleaned = await lab.meshcap(['clean']);
        assert.equal(cleaned.code, 0, cleaned.stderr);
        const after = await lab.save(variant);
        assert.deepEqual(foreignLines(after), before);
        assert.deepEqual(meshLines(after), []);
      } finally {
        await lab.destroy();
      }
    });

    test(`${variant}: rules written by old Istio versions converge`, async () => {
      const lab = Lab.create(`o${variant.slice(0, 1)}`);
      try {
        // Istio 1.5-era nat rules (-p tcp jumps) and pre-1.25 DNS conntrack rules straight in raw OUTPUT.
        const old = [
          '*nat',
          '-N ISTIO_INBOUND',
          '-N ISTIO_REDIRECT',
          '-N ISTIO_IN_REDIRECT',
          '-N ISTIO_OUTPUT',
          '-A ISTIO_INBOUND -p tcp --dport 22 -j RETURN',
          '-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001',
          '-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006',
          '-A PREROUTING -p tcp -j ISTIO_INBOUND',
          '-A OUTPUT -p tcp -j ISTIO_OUTPUT',
          '-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN',
          '-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN',
          '-A ISTIO_OUTPUT -j ISTIO_REDIRECT',
          'COMMIT',
          '*raw',
          '-A OUTPUT -p udp --dport 53 -m owner --uid-owner 1337 -j CT --zone 1',
          '-A OUTPUT -p udp --sport 15053 -m owner --uid-owner 1337 -j CT --zone 2',
          'COMMIT',
          '',
        ].join('\n');
        const loaded = await lab.exec(lab.pod, [`iptables-${variant}-restore`, '--noflush'], { input: old });
        assert.equal(loaded.code, 0, loaded.stderr);
        const args = [...CONFIG_A, `--backend=${variant}`];
        await appliedOk(lab, args);
        const state = [await lab.save(variant, 4), await lab.save(variant, 6)].join('\n');
        assert.equal(state, await freshStateFor(variant, args));
        assert.doesNotMatch(state, /-A OUTPUT -p tcp -j ISTIO_OUTPUT/);
        assert.doesNotMatch(state, /CT --zone/);
      } finally {
        await lab.destroy();
      }
    });

    test(`${variant}: partial state (a missing jump; IPv4 done, IPv6 not) converges`, async () => {
      const lab = Lab.create(`p${variant.slice(0, 1)}`);
      try {
        const v4only = [...CONFIG_A.filter((a) => a !== '--ipv6=false'), '--ipv6=false', `--backend=${variant}`];
        await appliedOk(lab, v4only);
        const removed = await lab.exec(lab.pod, [`iptables-${variant}`, '-t', 'nat', '-D', 'OUTPUT', '-j', 'ISTIO_OUTPUT']);
        assert.equal(removed.code, 0, removed.stderr);
        const dual = [...CONFIG_A.filter((a) => a !== '--ipv6=false'), '--ipv6=true', `--backend=${variant}`];
        const result = await appliedOk(lab, dual);
        assert.match(result.stderr, /IPv4: applied and verified/);
        assert.match(result.stderr, /IPv6: applied and verified/);
        const state = [await lab.save(variant, 4), await lab.save(variant, 6)].join('\n');
        assert.equal(state, await freshStateFor(variant, dual));
        const again = await appliedOk(lab, dual);
        assert.match(again.stderr, /already in place, nothing to do/);
      } finally {
        await lab.destroy();
      }
    });
  }
});

describe('backend detection (no side effects)', { skip }, () => {
  test('auto detection in a fresh namespace leaves /proc/net/ip_tables_names empty and picks nft', async () => {
    const lab = Lab.create('det');
    try {
      const result = await appliedOk(lab, ['-i', '*', '-b', '*', '--ipv6=false']);
      assert.match(result.stderr, /backend iptables-nft: no rules anywhere/);
      assert.equal((await lab.readFile(lab.pod, '/proc/net/ip_tables_names')).trim(), '');
      assert.equal((await lab.readFile(lab.pod, '/proc/net/ip6_tables_names')).trim(), '');
      const again = await appliedOk(lab, ['-i', '*', '-b', '*', '--ipv6=false']);
      assert.match(again.stderr, /iptables-nft already holds \d+ mesh rules/);
      assert.equal((await lab.readFile(lab.pod, '/proc/net/ip_tables_names')).trim(), '');
    } finally {
      await lab.destroy();
    }
  });

  test('the backend that holds mesh rules is kept; mesh rules in both backends end up in one', async () => {
    const lab = Lab.create('det2');
    try {
      await appliedOk(lab, ['-i', '*', '--ipv6=false', '--backend=legacy']);
      const kept = await appliedOk(lab, ['-i', '*', '--ipv6=false']);
      assert.match(kept.stderr, /backend iptables-legacy: iptables-legacy already holds/);
      await appliedOk(lab, ['-i', '*', '--ipv6=false', '--backend=nft']);
      assert.ok(meshLines(await lab.save('nft')).length > 0);
      assert.deepEqual(meshLines(await lab.save('legacy')), [], 'the pinned run removed the legacy copy');
      assert.match((await lab.meshcap(['apply', '-i', '*', '--ipv6=false'])).stderr, /iptables-nft already holds/);
    } finally {
      await lab.destroy();
    }
  });
});

describe('Istio compatibility flags', { skip }, () => {
  test('--reconcile is accepted, --force-apply rewrites, --cleanup-only removes', async () => {
    const lab = Lab.create('cmp');
    try {
      const args = ['-i', '*', '-b', '*', '--ipv6=false', '--backend=nft'];
      await appliedOk(lab, [...args, '--reconcile']);
      const state = await lab.save('nft');
      const forced = await appliedOk(lab, [...args, '--force-apply']);
      assert.match(forced.stderr, /IPv4: applied and verified/);
      assert.equal(await lab.save('nft'), state);
      const cleaned = await appliedOk(lab, [...args, '--cleanup-only']);
      assert.match(cleaned.stderr, /capture removed/);
      assert.deepEqual(meshLines(await lab.save('nft')), []);
    } finally {
      await lab.destroy();
    }
  });
});
