// npm run build:sea: dist/sea/meshcap, a single executable: a copy of this node with a V8 startup
// snapshot of the capture commands injected (src/cli/sea-capture.ts; other commands load
// dist/meshcap.cjs beside it). It starts istio-init ~12 ms sooner than `node bin/meshcap` (README,
// "Start-up and long lists"). Single executables and user snapshots are experimental in
// Node 20: when this node cannot build one, or the result does not behave exactly like bin/meshcap,
// nothing is left in dist/sea and everything keeps running on the plain path (bin/meshcap).
// MESHCAP_SEA=0 skips it.
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

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
const { version } = JSON.parse(readFileSync(path('package.json'), 'utf8'));
// The snapshot's script: one CommonJS file (a snapshot builder and a SEA load built-ins only).
await build({
  entryPoints: [path('dist/src/cli/sea-capture.js')],
  outfile: entry,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  define: { MESHCAP_BUILD_VERSION: JSON.stringify(version) },
  logOverride: { 'empty-import-meta': 'silent' },
  logLevel: 'warning',
});
writeFileSync(config, JSON.stringify({ main: entry, output: blob, useSnapshot: true, disableExperimentalSEAWarning: true }));

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
for (const args of checks) {
  const sea = spawnSync(partial, args, { env, encoding: 'utf8' });
  const plain = spawnSync(process.execPath, [path('bin/meshcap'), ...args], { env, encoding: 'utf8' });
  if (sea.status !== plain.status || sea.stdout !== plain.stdout || sea.stderr !== plain.stderr) {
    giveUp(`'meshcap ${args[0]}' answers differently from bin/meshcap (exit ${sea.status} vs ${plain.status}): ${sea.stderr.trim().split('\n')[0] ?? ''}`);
  }
}
rmSync(blob);
rmSync(config);
rmSync(entry);
renameSync(partial, target);
console.error(`build:sea: ${target} (node ${process.version}, startup snapshot)`);
