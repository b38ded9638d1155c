/**
 * Scope item 29's second half: between a primary's rewrite without the entry
 * and the agent's re-insertion, the agent is NotReady. Readiness is computed
 * from the files when asked (what /readyz does), so the check made in the
 * same turn as the rewrite, before the agent's watcher can run, sees the
 * entry missing; and every re-insertion counts one ready -> not ready
 * transition in /metrics, whether or not a probe came in between.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Agent } from '../../src/cni/agent.js';
import { httpGet as get } from '../helpers/http.js';
import { until } from '../helpers/poll.js';

const root = mkdtempSync(join(tmpdir(), 'meshcap-cni-ready-'));
after(() => rmSync(root, { recursive: true, force: true }));
const PRIMARY = JSON.stringify({ cniVersion: '1.0.0', name: 'primary', plugins: [{ type: 'bridge', bridge: 'cni0' }, { type: 'portmap', capabilities: { portMappings: true } }] });

const hasEntry = (path: string) => {
  try {
    return (JSON.parse(readFileSync(path, 'utf8')) as { plugins: { type: string }[] }).plugins.at(-1)?.type === 'meshcap-cni';
  } catch {
    return false;
  }
};
const metric = (text: string, name: string) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1]);

test('the agent is NotReady from a rewrite without the entry until it re-inserts it, and counts each such span', async () => {
  const confDir = join(root, 'net.d');
  const binDir = join(root, 'bin');
  mkdirSync(confDir);
  mkdirSync(binDir);
  const source = join(root, 'meshcap-cni');
  writeFileSync(source, 'the plugin', { mode: 0o755 });
  const file = join(confDir, '10-primary.conflist');
  writeFileSync(file, PRIMARY);
  const logs: string[] = [];
  const agent = new Agent({ confDir, binDir, source, runDir: join(root, 'run'), serviceAccountDir: join(root, 'no-sa'), env: {}, log: (level, line) => logs.push(`${level} ${line}`), pollMs: 50, metricsAddr: { host: '127.0.0.1', port: 0 } });
  try {
    await agent.start();
    assert.ok(hasEntry(file));
    assert.equal(agent.readiness(), true);
    const port = agent.address!.port;
    assert.equal((await get(port, '/readyz')).status, 200);
    assert.equal(metric(agent.metrics(), 'meshcap_cni_not_ready_transitions_total'), 0);

    // The primary restarts: its file without the entry. Asked in the same turn (the watcher cannot have run), not ready.
    writeFileSync(file, PRIMARY);
    assert.equal(agent.readiness(), false);
    assert.match(agent.state.check!.problems.join('; '), /10-primary\.conflist has no meshcap-cni entry/);
    assert.equal(agent.state.notReadyTransitions, 1);
    await until('re-inserted', 5000, () => hasEntry(file) || undefined, { intervalMs: 10 });
    assert.equal(agent.readiness(), true);
    assert.equal((await get(port, '/readyz')).status, 200);

    // Again, with nobody asking in between: the re-insertion itself records the NotReady span, once.
    const before = logs.length;
    writeFileSync(file, PRIMARY);
    await until('re-inserted again', 5000, () => hasEntry(file) || undefined, { intervalMs: 10 });
    const metrics = (await get(port, '/metrics')).body;
    assert.equal(metric(metrics, 'meshcap_cni_not_ready_transitions_total'), 2);
    assert.equal(metric(metrics, 'meshcap_cni_config_reinserts_total'), 2);
    assert.equal(metric(metrics, 'meshcap_cni_ready'), 1);
    const since = logs.slice(before);
    const notReady = since.findIndex((l) => /^warn not ready: .*10-primary\.conflist was rewritten without the meshcap-cni entry/.test(l));
    const ready = since.findIndex((l) => /^info ready: .*10-primary\.conflist holds the meshcap-cni entry/.test(l));
    assert.ok(notReady >= 0 && ready > notReady, since.join('\n'));

    // Something the agent cannot repair (the primary's file is not JSON): /readyz says 503 with the reason.
    writeFileSync(file, '{"cniVersion": ');
    const probe = await get(port, '/readyz');
    assert.equal(probe.status, 503);
    assert.match(probe.body, /^not ready: .*10-primary\.conflist/);
    assert.equal(agent.state.notReadyTransitions, 3);
  } finally {
    await agent.stop();
  }
});
