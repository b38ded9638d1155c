/**
 * The image `meshcap inject --cni` names for istio-validation, made from this
 * checkout without a registry: node and its libraries, the built CLI and its
 * one runtime dependency, and `meshcap` on PATH (a node script). Enough to run
 * the validation container through the CRI exactly as injected.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { hostFilesImage, withLibraries } from '../runtime/images.js';
import { REPO_ROOT } from './paths.js';

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

export function meshcapImageArchive(tag: string): string {
  const files = [
    ...withLibraries(process.execPath),
    join(REPO_ROOT, 'package.json'),
    ...filesUnder(join(REPO_ROOT, 'dist', 'bundle')),
    ...filesUnder(join(REPO_ROOT, 'node_modules', 'yaml')),
  ].filter((f) => statSync(f).isFile());
  const launcher = readFileSync(join(REPO_ROOT, 'bin', 'meshcap'), 'utf8')
    .replace(/^#!.*\n/, `#!${process.execPath}\n`)
    .replace("'../dist/bundle/main.js'", `'${join(REPO_ROOT, 'dist', 'bundle', 'main.js')}'`);
  return hostFilesImage(tag, files, { Entrypoint: ['meshcap'] }, { '/usr/local/bin/meshcap': launcher });
}
