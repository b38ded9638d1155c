/**
 * The image `meshcap inject --cni` names for istio-validation, made from this
 * checkout without a registry: node and its libraries, the built CLI (one
 * file, dependencies bundled), and `meshcap` on PATH (a node script). Enough to run
 * the validation container through the CRI exactly as injected.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { hostFilesImage, withLibraries } from '../runtime/images.js';
import { REPO_ROOT } from './paths.js';

export function meshcapImageArchive(tag: string): string {
  const files = [
    ...withLibraries(process.execPath),
    join(REPO_ROOT, 'package.json'),
    // One CommonJS file with its dependencies bundled (scripts/bundle.mjs).
    join(REPO_ROOT, 'dist', 'meshcap.cjs'),
  ].filter((f) => statSync(f).isFile());
  const launcher = readFileSync(join(REPO_ROOT, 'bin', 'meshcap'), 'utf8')
    .replace(/^#!.*\n/, `#!${process.execPath}\n`)
    .replace("'../dist/meshcap.cjs'", `'${join(REPO_ROOT, 'dist', 'meshcap.cjs')}'`);
  return hostFilesImage(tag, files, { Entrypoint: ['meshcap'] }, { '/usr/local/bin/meshcap': launcher });
}
