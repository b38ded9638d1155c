// Builds dist/cni/meshcap-cni: the CNI plugin as one executable (a Node single
// executable application: node itself with the bundled plugin injected), so a
// node needs no Node.js and nothing beside the file. Run after `tsc` (npm run build).
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'cni');
mkdirSync(out, { recursive: true });
const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;

// A SEA runs one CommonJS script whose require loads built-ins only: everything else is bundled,
// and the two uses of import.meta are given values that hold inside the executable.
await build({
  entryPoints: [join(root, 'dist', 'src', 'cni', 'sea-main.js')],
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  outfile: join(out, 'meshcap-cni.cjs'),
  define: { 'import.meta.url': '__meshcap_url' },
  banner: { js: 'var __meshcap_url = require("node:url").pathToFileURL(process.execPath).href;' },
  logLevel: 'warning',
  plugins: [{
    name: 'inline-version',
    setup(b) {
      b.onLoad({ filter: /[\\/]src[\\/]version\.js$/ }, () => ({ contents: `export function meshcapVersion() { return ${JSON.stringify(version)}; }`, loader: 'js' }));
    },
  }],
});

const blob = join(out, 'meshcap-cni.blob');
const config = join(out, 'sea-config.json');
writeFileSync(config, JSON.stringify({ main: join(out, 'meshcap-cni.cjs'), output: blob, disableExperimentalSEAWarning: true, useCodeCache: true }));
execFileSync(process.execPath, ['--experimental-sea-config', config], { stdio: ['ignore', 'ignore', 'inherit'] });
const temp = join(out, '.meshcap-cni.tmp');
copyFileSync(process.execPath, temp);
chmodSync(temp, 0o755);
execFileSync(process.execPath, [join(root, 'node_modules', 'postject', 'dist', 'cli.js'), temp, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'], { stdio: ['ignore', 'ignore', 'inherit'] });
renameSync(temp, join(out, 'meshcap-cni'));
rmSync(blob, { force: true });
rmSync(config, { force: true });
console.log(`dist/cni/meshcap-cni: ${(statSync(join(out, 'meshcap-cni')).size / 1e6).toFixed(1)} MB (node ${process.version} + the plugin)`);
