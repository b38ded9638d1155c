/** `meshcap cni install / uninstall` on real directories (no runtime): what lands in the conf and bin dirs. */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { entryState, insertEntry, orderConfigFiles, removeEntry } from '../../src/cni/conflist.js';
import { checkNode } from '../../src/cni/install.js';
import { runCli } from '../helpers/cli.js';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function node(): { confDir: string; binDir: string; plugin: string; run: (...args: string[]) => ReturnType<typeof runCli> } {
  const root = mkdtempSync(join(tmpdir(), 'meshcap-cni-unit-'));
  dirs.push(root);
  const confDir = join(root, 'net.d');
  const binDir = join(root, 'bin');
  mkdirSync(confDir);
  mkdirSync(binDir);
  // A stand-in for the single executable: install only copies bytes.
  const plugin = join(root, 'meshcap-cni-build');
  writeFileSync(plugin, '#!/bin/sh\necho plugin\n');
  chmodSync(plugin, 0o755);
  return { confDir, binDir, plugin, run: (...args) => runCli(['cni', ...args, '--cni-conf-dir', confDir, '--cni-bin-dir', binDir], { env: { MESHCAP_CNI_PLUGIN: plugin } }) };
}

const CALICO = {
  cniVersion: '0.3.1',
  name: 'k8s-pod-network',
  plugins: [
    { type: 'calico', log_level: 'info', datastore_type: 'kubernetes', ipam: { type: 'calico-ipam' }, policy: { type: 'k8s' }, kubernetes: { kubeconfig: '/etc/cni/net.d/calico-kubeconfig' } },
    { type: 'portmap', snat: true, capabilities: { portMappings: true } },
    { type: 'istio-cni', log_level: 'info', kubernetes: { kubeconfig: '/etc/cni/net.d/ZZZ-istio-cni-kubeconfig' } },
  ],
};
const json = (path: string) => JSON.parse(readFileSync(path, 'utf8'));
const out = (r: { stdout: string; stderr: string }) => `${r.stdout}${r.stderr}`;

describe('meshcap cni install', () => {
  test('libcni order: .conf, .conflist and .json sorted by name; other files ignored', () => {
    assert.deepEqual(orderConfigFiles(['99-z.conf', '10-a.conflist', 'README', '05-b.json', '.hidden.conf', '10-a.conf']), ['05-b.json', '10-a.conf', '10-a.conflist', '99-z.conf']);
  });

  test('one entry, last, in the first file; other plugins (another mesh included) unchanged as JSON; the capability declared; no cniVersion', () => {
    const n = node();
    writeFileSync(join(n.confDir, '10-calico.conflist'), JSON.stringify(CALICO));
    writeFileSync(join(n.confDir, '20-other.conflist'), JSON.stringify({ ...CALICO, name: 'other' }));
    const result = n.run('install', '--once');
    assert.equal(result.code, 0, out(result));
    const conf = json(join(n.confDir, '10-calico.conflist'));
    assert.deepEqual(conf.plugins.slice(0, -1), CALICO.plugins);
    assert.deepEqual(conf.plugins.at(-1), { type: 'meshcap-cni', capabilities: { 'io.kubernetes.cri.pod-annotations': true } });
    assert.equal(conf.name, CALICO.name);
    assert.equal(conf.cniVersion, CALICO.cniVersion);
    assert.deepEqual(json(join(n.confDir, '20-other.conflist')), { ...CALICO, name: 'other' });
    assert.equal(readFileSync(join(n.binDir, 'meshcap-cni'), 'utf8'), readFileSync(n.plugin, 'utf8'));
    assert.equal(statSync(join(n.binDir, 'meshcap-cni')).mode & 0o777, 0o755);
  });

  test('running it again changes nothing: same bytes, same mtime', () => {
    const n = node();
    writeFileSync(join(n.confDir, '10-calico.conflist'), JSON.stringify(CALICO));
    assert.equal(n.run('install', '--once').code, 0);
    const before = { conf: readFileSync(join(n.confDir, '10-calico.conflist')), mtime: statSync(join(n.confDir, '10-calico.conflist')).mtimeMs, bin: statSync(join(n.binDir, 'meshcap-cni')).mtimeMs };
    const again = n.run('install', '--once');
    assert.equal(again.code, 0, out(again));
    assert.match(again.stdout, /unchanged/);
    assert.deepEqual(readFileSync(join(n.confDir, '10-calico.conflist')), before.conf);
    assert.equal(statSync(join(n.confDir, '10-calico.conflist')).mtimeMs, before.mtime);
    assert.equal(statSync(join(n.binDir, 'meshcap-cni')).mtimeMs, before.bin);
  });

  test('a .conf becomes <base>.conflist with the original plugin first, keeping name and cniVersion; the .conf is removed', () => {
    const n = node();
    const bridge = { cniVersion: '1.0.0', name: 'bridge-net', type: 'bridge', bridge: 'cni0', ipam: { type: 'host-local', subnet: '198.18.0.0/24' } };
    writeFileSync(join(n.confDir, '10-bridge.conf'), JSON.stringify(bridge));
    assert.equal(n.run('install', '--once').code, 0);
    assert.deepEqual(readdirSync(n.confDir), ['10-bridge.conflist']);
    const conf = json(join(n.confDir, '10-bridge.conflist'));
    assert.equal(conf.name, 'bridge-net');
    assert.equal(conf.cniVersion, '1.0.0');
    assert.deepEqual(conf.plugins[0], bridge);
    assert.equal(conf.plugins[1].type, 'meshcap-cni');
    // And uninstall leaves a one-plugin list: the primary's plugins as before.
    assert.equal(n.run('uninstall').code, 0);
    assert.deepEqual(json(join(n.confDir, '10-bridge.conflist')).plugins, [bridge]);
  });

  for (const [name, text, problem] of [
    ['invalid JSON', '{"cniVersion": "1.0.0", "plugins": [', /is not valid JSON/],
    ['not a network config', '{"hello": "world"}', /not a network config/],
    ['a list without plugins', '{"cniVersion":"1.0.0","name":"x","plugins":[]}', /no "plugins"/],
  ] as const) {
    test(`first file ${name}: non-zero, exactly one line naming the file and the problem, nothing changed`, () => {
      const n = node();
      const file = join(n.confDir, '05-broken.conflist');
      writeFileSync(file, text);
      writeFileSync(join(n.confDir, '10-calico.conflist'), JSON.stringify(CALICO));
      const result = n.run('install', '--once');
      assert.notEqual(result.code, 0);
      const lines = out(result).trimEnd().split('\n');
      assert.equal(lines.length, 1, out(result));
      assert.ok(lines[0]!.includes(file), lines[0]);
      assert.match(lines[0]!, problem);
      assert.equal(readFileSync(file, 'utf8'), text);
      assert.deepEqual(json(join(n.confDir, '10-calico.conflist')), CALICO);
      assert.equal(existsSync(join(n.binDir, 'meshcap-cni')), false, 'no binary installed either');
    });
  }

  test('no config at all: meshcap never creates one', () => {
    const n = node();
    const result = n.run('install', '--once');
    assert.equal(result.code, 3, out(result));
    assert.deepEqual(readdirSync(n.confDir), []);
    assert.match(result.stderr, /never creates one/);
  });

  test('--help does no work', () => {
    const n = node();
    writeFileSync(join(n.confDir, '10-calico.conflist'), JSON.stringify(CALICO));
    const result = n.run('install', '--once', '--help');
    assert.equal(result.code, 0);
    assert.match(result.stdout, /Usage:/);
    assert.deepEqual(json(join(n.confDir, '10-calico.conflist')), CALICO);
    assert.equal(existsSync(join(n.binDir, 'meshcap-cni')), false);
  });

  test('stale temporary copies from a crash are removed; the copy is renamed into place', () => {
    const n = node();
    writeFileSync(join(n.confDir, '10-calico.conflist'), JSON.stringify(CALICO));
    writeFileSync(join(n.binDir, '.meshcap-cni.tmp.12345'), 'half a binary');
    assert.equal(n.run('install', '--once').code, 0);
    assert.deepEqual(readdirSync(n.binDir).sort(), ['meshcap-cni']);
  });

  test('uninstall: the entry out of every config first, then the executable; the lists are as before', () => {
    const n = node();
    writeFileSync(join(n.confDir, '10-calico.conflist'), JSON.stringify(CALICO));
    assert.equal(n.run('install', '--once').code, 0);
    // An entry left in a second config (say by an older install) is removed too.
    writeFileSync(join(n.confDir, '20-multus.conflist'), JSON.stringify({ ...CALICO, name: 'm', plugins: [...CALICO.plugins, { type: 'meshcap-cni' }] }));
    const result = n.run('uninstall');
    assert.equal(result.code, 0, out(result));
    assert.deepEqual(json(join(n.confDir, '10-calico.conflist')).plugins, CALICO.plugins);
    assert.deepEqual(json(join(n.confDir, '20-multus.conflist')).plugins, CALICO.plugins);
    assert.equal(existsSync(join(n.binDir, 'meshcap-cni')), false);
    assert.ok(result.stdout.indexOf('20-multus') < result.stdout.indexOf('removed: ' + join(n.binDir, 'meshcap-cni')), 'configs before the binary');
  });
});

describe('conflist edits (pure)', () => {
  test('a duplicated or misplaced entry is collapsed into one, last', () => {
    const text = JSON.stringify({ cniVersion: '1.0.0', name: 'n', plugins: [{ type: 'meshcap-cni' }, { type: 'bridge' }, { type: 'meshcap-cni', capabilities: {} }] });
    const edit = insertEntry('/x.conflist', text);
    const conf = JSON.parse(edit.text);
    assert.deepEqual(conf.plugins.map((p: { type: string }) => p.type), ['bridge', 'meshcap-cni']);
    assert.deepEqual(entryState('/x.conflist', edit.text), { ok: true });
    assert.equal(insertEntry('/x.conflist', edit.text).changed, false);
  });

  test('entryState names what is wrong', () => {
    const list = (plugins: object[]) => JSON.stringify({ cniVersion: '1.0.0', name: 'n', plugins });
    assert.match((entryState('/a.conflist', list([{ type: 'bridge' }])) as { problem: string }).problem, /no meshcap-cni entry/);
    assert.match((entryState('/a.conflist', list([{ type: 'meshcap-cni', capabilities: { 'io.kubernetes.cri.pod-annotations': true } }, { type: 'bridge' }])) as { problem: string }).problem, /not last/);
    assert.match((entryState('/a.conflist', list([{ type: 'bridge' }, { type: 'meshcap-cni' }])) as { problem: string }).problem, /does not declare/);
    assert.equal(removeEntry('/a.conflist', list([{ type: 'bridge' }])).changed, false);
  });
});

describe('meshcap cni install --config-mode owned | standalone', () => {
  test('owned: 00-meshcap.conflist holds the primary\'s plugins plus the entry, sorts first, follows the primary; the primary is untouched', () => {
    const n = node();
    writeFileSync(join(n.confDir, '10-calico.conflist'), JSON.stringify(CALICO));
    const result = n.run('install', '--once', '--config-mode', 'owned');
    assert.equal(result.code, 0, out(result));
    assert.deepEqual(json(join(n.confDir, '10-calico.conflist')), CALICO);
    const owned = json(join(n.confDir, '00-meshcap.conflist'));
    assert.deepEqual(owned.plugins.slice(0, -1), CALICO.plugins);
    assert.equal(owned.plugins.at(-1).type, 'meshcap-cni');
    assert.equal(owned.name, CALICO.name);
    assert.equal(checkNode(n.confDir, n.binDir, n.plugin, 'owned').ready, true);
    // The primary changes (a plugin added): not ready until meshcap's file follows; install follows it.
    const changed = { ...CALICO, plugins: [...CALICO.plugins, { type: 'bandwidth', capabilities: { bandwidth: true } }] };
    writeFileSync(join(n.confDir, '10-calico.conflist'), JSON.stringify(changed));
    assert.match(checkNode(n.confDir, n.binDir, n.plugin, 'owned').problems.join('\n'), /lacks the primary's plugin bandwidth/);
    assert.equal(n.run('install', '--once', '--config-mode', 'owned').code, 0);
    assert.deepEqual(json(join(n.confDir, '00-meshcap.conflist')).plugins.slice(0, -1), changed.plugins);
    // Something sorting before it is reported.
    writeFileSync(join(n.confDir, '00-aaa-early.conflist'), JSON.stringify({ ...CALICO, name: 'early' }));
    assert.match(checkNode(n.confDir, n.binDir, n.plugin, 'owned').problems.join('\n'), /sorts before 00-meshcap\.conflist/);
    rmSync(join(n.confDir, '00-aaa-early.conflist'));
    assert.equal(n.run('uninstall').code, 0);
    assert.deepEqual(readdirSync(n.confDir), ['10-calico.conflist']);
  });

  test('standalone: ZZZ-meshcap-cni.conf, a network of its own named meshcap-cni; never alone in the dir', () => {
    const n = node();
    assert.equal(n.run('install', '--once', '--config-mode', 'standalone').code, 3, 'no primary: nothing written');
    assert.deepEqual(readdirSync(n.confDir), []);
    writeFileSync(join(n.confDir, '10-calico.conflist'), JSON.stringify(CALICO));
    assert.equal(n.run('install', '--once', '--config-mode', 'standalone').code, 0);
    assert.deepEqual(json(join(n.confDir, 'ZZZ-meshcap-cni.conf')), { cniVersion: '1.0.0', name: 'meshcap-cni', type: 'meshcap-cni', capabilities: { 'io.kubernetes.cri.pod-annotations': true } });
    assert.deepEqual(json(join(n.confDir, '10-calico.conflist')), CALICO);
    assert.equal(checkNode(n.confDir, n.binDir, n.plugin, 'standalone').ready, true);
    assert.equal(n.run('install', '--once', '--config-mode', 'bogus').code, 2);
    assert.equal(n.run('uninstall').code, 0);
    assert.deepEqual(readdirSync(n.confDir), ['10-calico.conflist']);
  });
});
