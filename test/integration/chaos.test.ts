/**
 * Chaos: `apply` killed with SIGKILL at random moments while switching between
 * configs. After every kill the namespace must have no DROP rule and no
 * half-state that blocks traffic (an app connection is answered, by the proxy
 * or by the real server; the proxy's own connection reaches the real server),
 * and a final run must converge to exactly the state of a clean apply.
 * Eight concurrent runs must converge too.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { MESHCAP_BIN } from '../helpers/paths.js';
import { Lab, OUTSIDE_V4, labSkipReason } from '../helpers/netns.js';

const skip = labSkipReason();
const KILLS = Number(process.env.CHAOS_KILLS ?? 50);

const CONFIGS: readonly (readonly string[])[] = [
  ['-p', '15001', '-z', '15006', '-u', '1337', '-i', '*', '-b', '*', '-d', '15090,15021,15020'],
  ['-p', '15001', '-z', '15006', '-u', '1337', '-i', '198.18.0.0/16', '-x', '198.18.1.0/24', '-b', '8080,9090'],
  ['-p', '15001', '-z', '15006', '-u', '1337', '-g', '1337', '-i', '*', '-o', '9999', '-q', '3306', '-c', 'eth9', '-b', ''],
  ['-p', '15001', '-z', '15006', '-u', '1337', '-i', '*', '-b', '*', '--redirect-dns', '--dns-servers-v4', '198.18.0.1', '--dns-servers-v6', ''],
];

/** Deterministic pseudo-random delays, so a failing run can be replayed (seed in the test name). */
function mulberry32(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Starts `meshcap apply` in the pod and SIGKILLs it after `delayMs`; resolves when it is gone. */
function applyAndKill(lab: Lab, args: readonly string[], delayMs: number): Promise<'killed' | 'finished'> {
  return new Promise((resolve) => {
    const child = spawn('ip', ['netns', 'exec', lab.pod, process.execPath, MESHCAP_BIN, 'apply', ...args, '--ipv6=false'], { stdio: 'ignore' });
    let finished = false;
    const timer = setTimeout(() => child.kill('SIGKILL'), delayMs);
    child.on('exit', (_code, signal) => {
      clearTimeout(timer);
      finished = signal !== 'SIGKILL';
      resolve(finished ? 'finished' : 'killed');
    });
  });
}

for (const variant of ['nft', 'legacy'] as const) {
  describe(`chaos on iptables-${variant}`, { skip }, () => {
    let lab: Lab;
    const seed = variant === 'nft' ? 1337 : 4242;
    before(async () => {
      lab = Lab.create(`ch${variant.slice(0, 1)}`);
      await lab.serve(lab.outside, [8080], 'outside-app');
      await lab.serve(lab.pod, [15001, 15006], 'proxy');
    });
    after(async () => lab?.destroy());

    test(`${variant === 'nft' ? KILLS : Math.ceil(KILLS / 2)} applies killed at random moments never block traffic; the next run converges (seed ${seed})`, async () => {
      const random = mulberry32(seed);
      const kills = variant === 'nft' ? KILLS : Math.ceil(KILLS / 2);
      let killed = 0;
      for (let i = 0; i < kills; i++) {
        const config = [...CONFIGS[Math.floor(random() * CONFIGS.length)]!, `--backend=${variant}`];
        // Spread the kills over the whole run: start-up, detection, restore and read-back.
        const outcome = await applyAndKill(lab, config, Math.floor(random() * 260));
        if (outcome === 'killed') killed++;
        const save = await lab.save(variant);
        assert.doesNotMatch(save, /-j DROP/, `a DROP rule after kill ${i}`);
        const app = await lab.connect(lab.pod, OUTSIDE_V4, 8080);
        assert.ok(app.ok, `after kill ${i} (${config.join(' ')}), an app connection got no answer: ${app.error}\n${save}`);
        assert.match(app.reply!, /^(proxy \S+ 15001|outside-app \S+ 8080)$/);
        const proxy = await lab.connect(lab.pod, OUTSIDE_V4, 8080, { uid: 1337 });
        assert.equal(proxy.reply, `outside-app ${OUTSIDE_V4} 8080`, `after kill ${i}, the proxy's own traffic must reach the server`);
      }
      assert.ok(killed >= kills / 3, `only ${killed} of ${kills} runs were actually killed mid-way`);

      const final = [...CONFIGS[0]!, `--backend=${variant}`, '--ipv6=false'];
      const converged = await lab.meshcap(['apply', ...final]);
      assert.equal(converged.code, 0, converged.stderr);
      const state = await lab.save(variant);
      const fresh = Lab.create('chref');
      try {
        const reference = await fresh.meshcap(['apply', ...final]);
        assert.equal(reference.code, 0, reference.stderr);
        assert.equal(state, await fresh.save(variant));
      } finally {
        await fresh.destroy();
      }
      const app = await lab.connect(lab.pod, OUTSIDE_V4, 8080);
      assert.match(app.reply ?? '', / 15001$/);
    });

    test('eight concurrent runs of different configs all succeed; a final run converges', async () => {
      const runs = await Promise.all(
        Array.from({ length: 8 }, (_, i) => lab.meshcap(['apply', ...CONFIGS[i % 2]!, `--backend=${variant}`, '--ipv6=false'])),
      );
      runs.forEach((run, i) => assert.equal(run.code, 0, `run ${i}:\n${run.stderr}`));
      const same = await Promise.all(Array.from({ length: 8 }, () => lab.meshcap(['apply', ...CONFIGS[1]!, `--backend=${variant}`, '--ipv6=false'])));
      same.forEach((run, i) => assert.equal(run.code, 0, `run ${i}:\n${run.stderr}`));
      const state = await lab.save(variant);
      assert.equal(state.split('\n').filter((l) => l === '-A OUTPUT -j ISTIO_OUTPUT').length, 1);
      assert.equal(state.split('\n').filter((l) => l === '-A PREROUTING -p tcp -j ISTIO_INBOUND').length, 1);
      const again = await lab.meshcap(['apply', ...CONFIGS[1]!, `--backend=${variant}`, '--ipv6=false']);
      assert.match(again.stderr, /already in place, nothing to do/);
    });
  });
}
