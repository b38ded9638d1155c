// npm run build, after tsc: the CLI as one CommonJS file, dist/meshcap.cjs (bin/meshcap loads it; the
// single executable is made from it). One CommonJS file starts faster than ES modules in several
// files (no ESM loader, one compile), and commands other than the capture are evaluated only when
// run: esbuild turns their dynamic imports into lazy initialisers. yaml is bundled, so the file
// needs no node_modules at run time.
import { readFileSync, rmSync } from 'node:fs';
import { build } from 'esbuild';

const root = new URL('..', import.meta.url);
const { version } = JSON.parse(readFileSync(new URL('package.json', root), 'utf8'));
rmSync(new URL('dist/bundle', root), { recursive: true, force: true });
await build({
  entryPoints: [new URL('dist/src/cli/single.js', root).pathname],
  outfile: new URL('dist/meshcap.cjs', root).pathname,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  define: { MESHCAP_BUILD_VERSION: JSON.stringify(version) },
  // src/version.ts reads import.meta only when the version was not inlined, which it is here.
  logOverride: { 'empty-import-meta': 'silent' },
  logLevel: 'warning',
});
