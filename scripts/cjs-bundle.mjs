// How meshcap is bundled, in one place: dist/meshcap.cjs (scripts/bundle.mjs) and the single
// executable's snapshot script and plugin (scripts/build-sea.mjs). One CommonJS file with its
// dependencies included, for Node 20, with the version inlined: src/version.ts reads package.json
// through import.meta only when it was not, and a bundle has no import.meta.
import { readFileSync } from 'node:fs';
import { build } from 'esbuild';

export const version = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version;

export function bundleCjs(entry, outfile) {
  return build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    define: { MESHCAP_BUILD_VERSION: JSON.stringify(version) },
    logOverride: { 'empty-import-meta': 'silent' },
    logLevel: 'warning',
  });
}
