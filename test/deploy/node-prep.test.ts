/**
 * node-prep's module script, run as written in deploy/node-prep.yaml with a
 * fake modprobe first on PATH (it records its calls and fails for names it is
 * told to): failures anywhere in the list fail the container, built-in
 * netfilter needs no modprobe, and the pod can start without /lib/modules.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, describe, test } from 'node:test';
import YAML from 'yaml';
import { REPO_ROOT } from '../helpers/paths.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const daemonSet = YAML.parseAllDocuments(readFileSync(join(REPO_ROOT, 'deploy', 'node-prep.yaml'), 'utf8'))
  .map((doc) => doc.toJS() as Obj)
  .find((object) => object.kind === 'DaemonSet')!;
const init = daemonSet.spec.template.spec.initContainers[0];
const script: string = init.args[0];
const defaultModules: string = init.env.find((e: Obj) => e.name === 'MESHCAP_MODULES').value;

const bin = mkdtempSync(join(tmpdir(), 'mc-nodeprep-'));
after(() => rmSync(bin, { recursive: true, force: true }));
const calls = join(bin, 'calls');
// Fails for modules named in FAIL_MODULES, "loads" the rest; records every call.
writeFileSync(join(bin, 'modprobe'), `#!/bin/sh\necho "$*" >> "${calls}"\ncase " $FAIL_MODULES " in *" $1 "*) echo "modprobe: FATAL: Module $1 not found in directory /lib/modules/$(uname -r)" >&2; exit 1;; esac\nexit 0\n`);
chmodSync(join(bin, 'modprobe'), 0o755);

function runScript(modules: string, failModules = '') {
  rmSync(calls, { force: true });
  const result = spawnSync('/bin/sh', ['-c', script], {
    env: { PATH: `${bin}:${process.env.PATH}`, MESHCAP_MODULES: modules, FAIL_MODULES: failModules },
    encoding: 'utf8',
  });
  const modprobed = existsSync(calls) ? readFileSync(calls, 'utf8').trim().split('\n') : [];
  return { code: result.status, stdout: result.stdout, stderr: result.stderr, modprobed };
}

describe('node-prep', () => {
  test('the script is valid POSIX sh, and /lib/modules is mounted read-only without requiring it to exist', () => {
    assert.equal(spawnSync('/bin/sh', ['-n', '-c', script]).status, 0);
    const volume = daemonSet.spec.template.spec.volumes.find((v: Obj) => v.name === 'modules');
    assert.equal(volume.hostPath.path, '/lib/modules');
    assert.notEqual(volume.hostPath.type, 'Directory', 'a kernel without modules has no /lib/modules: the pod would never start');
    assert.equal(volume.hostPath.type, 'DirectoryOrCreate');
    assert.ok(init.volumeMounts.every((m: Obj) => m.readOnly === true));
  });

  test('a modprobe failure anywhere in the list fails the container, naming the module; the others are still tried', () => {
    const first = runScript('meshcap_fake_a meshcap_fake_b', 'meshcap_fake_a');
    assert.equal(first.code, 1, first.stdout + first.stderr);
    assert.deepEqual(first.modprobed, ['meshcap_fake_a', 'meshcap_fake_b']);
    assert.match(first.stderr, /FAILED: meshcap_fake_a neither present nor loadable/);
    assert.match(first.stdout, /loaded meshcap_fake_b/);
    const middle = runScript('meshcap_fake_a meshcap_fake_b meshcap_fake_c', 'meshcap_fake_b');
    assert.equal(middle.code, 1);
    assert.match(middle.stderr, /FAILED: meshcap_fake_b neither/);
    const all = runScript('meshcap_fake_a meshcap_fake_b');
    assert.equal(all.code, 0, all.stderr);
    assert.match(all.stdout, /all modules present/);
  });

  // The facts of this kernel decide what the default list needs; a kernel with all of it
  // built in (this machine: no CONFIG_MODULES, no /lib/modules) must need no modprobe at all.
  const symbols: Record<string, string> = {
    nf_tables: 'NF_TABLES', nft_compat: 'NFT_COMPAT', nft_chain_nat: 'NFT_NAT', xt_REDIRECT: 'NETFILTER_XT_TARGET_REDIRECT',
    xt_owner: 'NETFILTER_XT_MATCH_OWNER', xt_conntrack: 'NETFILTER_XT_MATCH_CONNTRACK', xt_multiport: 'NETFILTER_XT_MATCH_MULTIPORT',
    xt_comment: 'NETFILTER_XT_MATCH_COMMENT',
  };
  let kernelConfig = '';
  try {
    kernelConfig = gunzipSync(readFileSync('/proc/config.gz')).toString('utf8');
  } catch {}
  const allBuiltIn = defaultModules.split(/\s+/).every((m) => symbols[m] && new RegExp(`^CONFIG_${symbols[m]}=y$`, 'm').test(kernelConfig));
  test('netfilter built in (and no /lib/modules): the default list succeeds without any modprobe', {
    skip: allBuiltIn ? false : 'skipped: this kernel does not have the default modules built in (needs /proc/config.gz saying =y for each)',
  }, () => {
    const result = runScript(defaultModules, defaultModules);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.deepEqual(result.modprobed, [], 'every module is found built in; modprobe (failing here) is never needed');
    for (const m of defaultModules.split(/\s+/)) assert.match(result.stdout, new RegExp(`node-prep: ${m} (built in|loaded|registered)`));
    if (!existsSync('/lib/modules')) assert.doesNotMatch(result.stderr, /lib\/modules/);
  });
});
