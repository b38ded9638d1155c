// npm run build:sea: dist/sea/meshcap, the single executable: a copy of this node with a blob
// injected that holds (src/cli/sea-capture.ts)
//   - a V8 startup snapshot of the capture commands (istio-init starts ~12 ms sooner than
//     `node bin/meshcap`; README, "Start-up and long lists");
//   - the CNI plugin (src/cni/sea-main.ts) and the whole CLI (dist/meshcap.cjs) as assets, each with a
//     V8 code cache made here, so the executable needs nothing beside it. It is the image's one
//     program and, copied as meshcap-cni by `meshcap cni install`, the plugin.
// Single executables and user snapshots are experimental in Node 20: when this node cannot build
// one, or the result does not behave exactly like bin/meshcap, nothing is left in dist/sea and
// everything keeps running on the plain path (bin/meshcap; the CNI plugin then cannot be installed).
// MESHCAP_SEA=0 skips it.
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Script } from 'node:vm';
import { fileURLToPath } from 'node:url';
import { bundleCjs, version } from './cjs-bundle.mjs';

const path = (relative) => fileURLToPath(new URL(`../${relative}`, import.meta.url));
const dir = path('dist/sea');
const target = `${dir}/meshcap`;
const partial = `${dir}/meshcap.partial`;
const blob = `${dir}/prep.blob`;
const config = `${dir}/sea-config.json`;
const entry = `${dir}/capture.cjs`;
// The build must not inherit options that change how node starts (NODE_OPTIONS) or what it loads.
const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/' };

function giveUp(reason) {
  rmSync(dir, { recursive: true, force: true });
  console.error(`build:sea: no single executable (${reason}); meshcap runs on the plain path, bin/meshcap`);
  process.exit(0);
}

if (process.env.MESHCAP_SEA === '0') giveUp('MESHCAP_SEA=0');
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
// The snapshot's script: one CommonJS file (a snapshot builder and a SEA load built-ins only).
await bundleCjs(path('dist/src/cli/sea-capture.js'), entry);
// The plugin: its own smaller bundle, since every ADD pays for what it compiles.
const pluginEntry = `${dir}/plugin.cjs`;
await bundleCjs(path('dist/src/cni/sea-main.js'), pluginEntry);
// Each asset is stored wrapped in the module function, the exact text its code cache is made from
// (the executable's V8 accepts a cache made by this node: same version and flags).
const assets = {};
for (const [name, file] of [['meshcap.cjs', path('dist/meshcap.cjs')], ['meshcap-cni.cjs', pluginEntry]]) {
  const wrapped = `(function (exports, require, module, __filename, __dirname) {${readFileSync(file, 'utf8')}\n})`;
  writeFileSync(`${dir}/${name}.asset`, wrapped);
  writeFileSync(`${dir}/${name}.cache`, new Script(wrapped, { filename: name }).createCachedData());
  assets[name] = `${dir}/${name}.asset`;
  assets[`${name}.cache`] = `${dir}/${name}.cache`;
}
// The asset names are the ones src/cli/sea-capture.ts reads.
writeFileSync(config, JSON.stringify({ main: entry, output: blob, useSnapshot: true, disableExperimentalSEAWarning: true, assets }));

// The snapshot builder warns that child_process and module are "not yet fully verified" in a
// snapshot; the checks below run the result before it is kept.
const prep = spawnSync(process.execPath, ['--experimental-sea-config', config], { env, encoding: 'utf8' });
if (prep.status !== 0) giveUp(`node ${process.version} --experimental-sea-config failed: ${(prep.stderr || prep.error?.message || '').trim().split('\n').pop()}`);

let inject;
try {
  ({ inject } = createRequire(import.meta.url)('postject'));
} catch {
  giveUp('postject is not installed (npm install)');
}
copyFileSync(process.execPath, partial);
chmodSync(partial, 0o755);
try {
  // The fuse is node's own marker for "a SEA blob is present" (the value from node's documentation).
  await inject(partial, 'NODE_SEA_BLOB', readFileSync(blob), { sentinelFuse: 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2' });
} catch (error) {
  giveUp(`postject failed: ${error.message}`);
}

// Keep it only if it answers exactly as the plain path: version, and dry-run traces of both backends.
const ISTIO_INIT = ['-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '10.0.0.0/8', '-b', '*', '-d', '15090,15021,15020'];
const checks = [
  ['--version'],
  ['istio-iptables', '--dry-run', ...ISTIO_INIT],
  ['apply', '--dry-run', '--native-nftables', '--ipv6=true', ...ISTIO_INIT],
  ['istio-iptables', '--no-such-flag'],
  ['explain', ...ISTIO_INIT],
];
const same = (label, sea, plain) => {
  if (sea.status !== plain.status || sea.stdout !== plain.stdout || sea.stderr !== plain.stderr) {
    giveUp(`'${label}' answers differently from bin/meshcap (exit ${sea.status} vs ${plain.status}): ${(sea.stderr || sea.error?.message || '').trim().split('\n')[0] ?? ''}`);
  }
};
for (const args of checks) {
  same(`meshcap ${args[0]}`, spawnSync(partial, args, { env, encoding: 'utf8' }), spawnSync(process.execPath, [path('bin/meshcap'), ...args], { env, encoding: 'utf8' }));
}
// By the name meshcap-cni it is the CNI plugin (what `meshcap cni install` puts in the bin dir).
const plugin = `${dir}/meshcap-cni`;
copyFileSync(partial, plugin);
const cniEnv = { ...env, CNI_COMMAND: 'VERSION' };
const version0 = '{"cniVersion":"0.4.0"}';
same('meshcap-cni VERSION', spawnSync(plugin, [], { env: cniEnv, input: version0, encoding: 'utf8' }), spawnSync(process.execPath, [path('bin/meshcap'), 'cni', 'plugin'], { env: cniEnv, input: version0, encoding: 'utf8' }));
rmSync(plugin);
for (const file of [blob, config, entry, pluginEntry, ...Object.values(assets)]) rmSync(file);
renameSync(partial, target);
console.error(`build:sea: ${target} (node ${process.version}, startup snapshot)`);
