// npm run build, after tsc: the CLI as one CommonJS file, dist/meshcap.cjs (bin/meshcap loads it; the
// single executable carries it). One CommonJS file starts faster than ES modules in several files (no
// ESM loader, one compile), and commands other than the capture are evaluated only when run: esbuild
// turns their dynamic imports into lazy initialisers. yaml and gRPC are bundled, so the file needs no
// node_modules at run time.
import { rmSync } from 'node:fs';
import { bundleCjs } from './cjs-bundle.mjs';

const at = (relative) => new URL(`../${relative}`, import.meta.url).pathname;
rmSync(at('dist/bundle'), { recursive: true, force: true });
await bundleCjs(at('dist/src/cli/single.js'), at('dist/meshcap.cjs'));
