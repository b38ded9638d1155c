/**
 * `meshcap cni agent` as a process on real directories: it installs, keeps
 * the entry in place when the "primary CNI" rewrites its file (NotReady until
 * then: one transition per re-insertion in /metrics), serves readiness and
 * metrics, reports a config fight, and on SIGTERM leaves the entry and the
 * executable where they are.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ensurePlugin } from '../helpers/cni-node.js';
import { httpGet as get } from '../helpers/http.js';
import { until } from '../helpers/poll.js';
import { MESHCAP_BIN } from '../helpers/paths.js';

const PRIMARY = { cniVersion: '1.0.0', name: 'primary', plugins: [{ type: 'bridge', bridge: 'cni0', ipam: { type: 'host-local', subnet: '198.18.9.0/24' } }, { type: 'portmap', capabilities: { portMappings: true } }] };



const hasEntry = (path: string) => {
  try {
    const conf = JSON.parse(readFileSync(path, 'utf8'));
    return conf.plugins.at(-1).type === 'meshcap-cni' ? true : undefined;
  } catch {
    return undefined;
  }
};

describe('meshcap cni agent', () => {
  const root = mkdtempSync(join(tmpdir(), 'meshcap-cni-agent-'));
  const confDir = join(root, 'net.d');
  const binDir = join(root, 'bin');
  mkdirSync(confDir);
  mkdirSync(binDir);
  let child: ChildProcess | undefined;
  let logs = '';
  after(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    rmSync(root, { recursive: true, force: true });
  });

  test('installs, re-inserts within 2 s, reports a fight, is ready only with the entry, and keeps everything on SIGTERM', async () => {
    const plugin = ensurePlugin();
    child = spawn(process.execPath, [MESHCAP_BIN, 'cni', 'agent', '--cni-conf-dir', confDir, '--cni-bin-dir', binDir, '--metrics-addr', '127.0.0.1:0'], {
      env: { PATH: process.env.PATH!, MESHCAP_CNI_PLUGIN: plugin, MESHCAP_CNI_RUN_DIR: join(root, 'run') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stderr!.on('data', (c: Buffer) => (logs += c.toString()));
    const port = Number(await until('metrics port', 15_000, () => /serving \/readyz and \/metrics on port (\d+)/.exec(logs)?.[1]));

    // No primary config yet: not ready, and nothing created.
    assert.equal((await get(port, '/readyz')).status, 503);
    assert.deepEqual(existsSync(join(confDir, 'meshcap.conflist')), false);
    const file = join(confDir, '10-primary.conflist');
    writeFileSync(file, JSON.stringify(PRIMARY));
    await until('entry inserted', 5000, () => hasEntry(file));
    await until('ready', 5000, async () => ((await get(port, '/readyz')).status === 200 ? true : undefined));
    assert.ok(existsSync(join(binDir, 'meshcap-cni')));

    // The primary restarts and rewrites its file without the entry: back within 2 s, NotReady in between.
    const counters = async () => {
      const text = (await get(port, '/metrics')).body;
      const read = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1]);
      return { notReady: read('meshcap_cni_not_ready_transitions_total'), reinserts: read('meshcap_cni_config_reinserts_total') };
    };
    const initial = await counters();
    const logged = logs.length;
    writeFileSync(file, JSON.stringify(PRIMARY));
    const rewritten = Date.now();
    await until('entry re-inserted', 2000, () => hasEntry(file));
    const ms = Date.now() - rewritten;
    assert.ok(ms < 2000, `re-inserted after ${ms} ms`);
    await until('ready again', 2000, async () => ((await get(port, '/readyz')).status === 200 ? true : undefined));
    const afterOne = await counters();
    assert.ok(afterOne.reinserts > initial.reinserts);
    assert.equal(afterOne.notReady - initial.notReady, afterOne.reinserts - initial.reinserts, 'one NotReady span per re-insertion');
    assert.match(logs.slice(logged), /not ready: [^\n]*10-primary\.conflist (was rewritten without the|has no) meshcap-cni entry[\s\S]*ready: [^\n]*10-primary\.conflist holds the meshcap-cni entry/);

    // It keeps doing that: a config fight, in the log and the metrics.
    for (let i = 0; i < 10; i++) {
      writeFileSync(file, JSON.stringify(PRIMARY));
      await until(`re-insertion ${i}`, 2000, () => hasEntry(file));
    }
    assert.match(logs, /config fight: .*10-primary\.conflist/);
    const metrics = (await get(port, '/metrics')).body;
    assert.match(metrics, /^meshcap_cni_config_fights_total 1$/m);
    assert.match(metrics, /^meshcap_cni_config_reinserts_total (1[1-9]|[2-9]\d)$/m);
    assert.match(metrics, /^meshcap_cni_ready 1$/m);
    const afterFight = await counters();
    assert.equal(afterFight.notReady - initial.notReady, afterFight.reinserts - initial.reinserts);

    // The binary replaced by something else: not ours, so it is put back.
    writeFileSync(join(binDir, 'meshcap-cni'), 'not the plugin');
    await until('binary restored', 5000, () => (readFileSync(join(binDir, 'meshcap-cni')).length > 1_000_000 ? true : undefined));

    // SIGTERM (a rolling upgrade): the entry and the executable stay.
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => child!.once('exit', (c) => resolve(c)));
    assert.equal(code, 0, logs);
    assert.ok(hasEntry(file));
    assert.ok(existsSync(join(binDir, 'meshcap-cni')));
    assert.match(logs, /entry and executable stay in place/);
  });
});
