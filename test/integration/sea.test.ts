/**
 * The single executable (dist/sea/meshcap, npm run build:sea): what a pod's
 * init container runs from the image. It must leave exactly the rules
 * bin/meshcap leaves, capture real connections, be a no-op on a re-run, and
 * keep working where meshcap starts itself again (`-e` probes run as another
 * user, status --netns). Built here when missing; skipped only when this node
 * cannot build one (then the image runs bin/meshcap too).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Lab, OUTSIDE_V4, labSkipReason } from '../helpers/netns.js';
import { currentSingleExecutable, SINGLE_EXECUTABLE } from '../helpers/single-executable.js';

const SEA = SINGLE_EXECUTABLE;

function seaOrSkip(): string | false {
  const lab = labSkipReason();
  if (lab) return lab;
  // Built again when older than this code: the test is about this code.
  const sea = currentSingleExecutable();
  return 'problem' in sea ? `skipped: this node builds no single executable: ${sea.problem}` : false;
}

const skip = seaOrSkip();
const CONFIG = ['-p', '15001', '-z', '15006', '-u', '1337', '-g', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '198.18.1.0/24', '-b', '*', '-d', '9090,15021', '--ipv6=false'];
const MODES = [['--backend=nft'], ['--backend=legacy'], ['--native-nftables']] as const;

async function meshState(lab: Lab, mode: readonly string[]): Promise<string> {
  if (mode[0] === '--native-nftables') return (await lab.nftRuleset()).split('table ').filter((t) => t.startsWith('inet istio-proxy-')).join('table ');
  return lab.save(mode[0] === '--backend=legacy' ? 'legacy' : 'nft', 4);
}

describe('the single executable', { skip }, () => {
  for (const mode of MODES) {
    describe(mode[0], () => {
      let lab: Lab;
      let reference: Lab;
      before(() => {
        lab = Lab.create('sea');
        reference = Lab.create('sea-ref');
      });
      after(async () => {
        await lab?.destroy();
        await reference?.destroy();
      });

      test('applies the same rules as bin/meshcap, and they capture real connections', async () => {
        const sea = await lab.exec(lab.pod, [SEA, 'istio-iptables', ...mode, ...CONFIG]);
        assert.equal(sea.code, 0, sea.stderr);
        const plain = await reference.meshcap(['istio-iptables', ...mode, ...CONFIG]);
        assert.equal(plain.code, 0, plain.stderr);
        const state = await meshState(lab, mode);
        assert.match(state, /15001/);
        assert.equal(state, await meshState(reference, mode));
        await lab.serve(lab.outside, [8080], 'outside-app');
        await lab.serve(lab.pod, [15001, 15006], 'proxy');
        const app = await lab.connect(lab.pod, OUTSIDE_V4, 8080);
        assert.match(app.reply ?? app.error ?? '', /^proxy \S+ 15001$/);
      });

      test('a re-run changes nothing', async () => {
        const before = await meshState(lab, mode);
        const again = await lab.exec(lab.pod, [SEA, 'istio-iptables', ...mode, ...CONFIG]);
        assert.equal(again.code, 0, again.stderr);
        assert.match(again.stderr, /already in place, nothing to do/);
        assert.equal(await meshState(lab, mode), before);
      });
    });
  }

  test('`-e` runs a script as node -e would (probes as another uid start process.execPath -e)', () => {
    const result = spawnSync(SEA, ['-e', "process.stdout.write(JSON.stringify([process.argv.slice(1), require('node:net').isIP('198.18.0.1')]))", 'a', 'b'], { encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), [['a', 'b'], 4]);
  });

  test('probe-connect as another uid and status --netns start the executable again', async () => {
    // The probe re-runs the executable as uid 1337, which may not enter the checkout (a clone under a
    // 0700 mktemp dir): run a world-readable copy, alone in its directory as in the image.
    const dir = mkdtempSync(join(tmpdir(), 'meshcap-sea-'));
    chmodSync(dir, 0o755);
    const sea = join(dir, 'meshcap');
    copyFileSync(SEA, sea);
    chmodSync(sea, 0o755);
    const lab = Lab.create('sea-self');
    try {
      await lab.serve(lab.outside, [8080], 'outside-app');
      const probe = await lab.exec(lab.pod, [sea, 'probe-connect', OUTSIDE_V4, '8080', '--uid', '1337', '--timeout', '3000']);
      assert.equal(JSON.parse(probe.stdout).reply, `outside-app ${OUTSIDE_V4} 8080`, probe.stderr);
      assert.equal((await lab.exec(lab.pod, [SEA, 'apply', ...CONFIG])).code, 0);
      const status = spawnSync(SEA, ['status', '--netns', lab.pod], { encoding: 'utf8' });
      assert.equal(status.status, 0, status.stderr);
      assert.match(status.stdout, /HEALTHY/);
    } finally {
      await lab.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
