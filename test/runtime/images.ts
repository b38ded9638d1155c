/**
 * Images for the runtime tier, made without a registry. The pause image is a single layer holding this
 * machine's /bin/sleep and the libraries it loads (about 2 MB), written as a docker-archive that
 * `ctr images import` reads.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { spawnSync } from 'node:child_process';

export const PAUSE_IMAGE = 'localhost/meshcap-test-pause:1';

let pauseArchive: string | undefined;
const made: string[] = [];
process.on('exit', () => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

/** Files a dynamically linked binary needs: itself and what `ldd` lists. */
export function withLibraries(binary: string): string[] {
  const ldd = spawnSync('ldd', [binary], { encoding: 'utf8' });
  const libraries = [...(ldd.stdout ?? '').matchAll(/(\/\S+) \(0x/g)].map((m) => m[1]!);
  return [binary, ...libraries];
}

/**
 * Writes a docker-archive with one layer made of `files` (host paths copied to the same paths) and the
 * given image config; returns the archive path (removed on exit).
 */
export function hostFilesImage(
  tag: string,
  files: string[],
  config: { Entrypoint?: string[]; Cmd?: string[]; User?: string },
  /** Files that exist only in the image: path -> text (mode 0755). */
  extra: Readonly<Record<string, string>> = {},
): string {
  const dir = mkdtempSync(join(tmpdir(), 'meshcap-rt-image-'));
  made.push(dir);
  const root = join(dir, 'rootfs');
  for (const file of files) {
    const target = join(root, file);
    mkdirSync(dirname(target), { recursive: true });
    copyFileSync(file, target);
  }
  for (const [file, text] of Object.entries(extra)) {
    const target = join(root, file);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, text, { mode: 0o755 });
  }
  mkdirSync(join(root, 'tmp'), { recursive: true });
  const layer = join(dir, 'layer.tar');
  const tar = spawnSync('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-C', root, '-cf', layer, '.']);
  if (tar.status !== 0) throw new Error(`tar failed: ${tar.stderr}`);
  const diffId = `sha256:${createHash('sha256').update(readFileSync(layer)).digest('hex')}`;
  const imageConfig = {
    architecture: 'amd64',
    os: 'linux',
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], ...config },
    rootfs: { type: 'layers', diff_ids: [diffId] },
    history: [{ created_by: 'meshcap test harness: host files' }],
  };
  const configText = JSON.stringify(imageConfig);
  const configName = `${createHash('sha256').update(configText).digest('hex')}.json`;
  writeFileSync(join(dir, configName), configText);
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify([{ Config: configName, RepoTags: [tag], Layers: ['layer.tar'] }]));
  const archive = join(dir, 'image.tar');
  const pack = spawnSync('tar', ['-C', dir, '-cf', archive, 'manifest.json', configName, 'layer.tar']);
  if (pack.status !== 0) throw new Error(`tar failed: ${pack.stderr}`);
  rmSync(root, { recursive: true, force: true });
  return archive;
}

/** The sandbox ("pause") image: sleeps until killed. */
export function pauseImageArchive(): string {
  if (pauseArchive && existsSync(pauseArchive)) return pauseArchive;
  pauseArchive = hostFilesImage(PAUSE_IMAGE, withLibraries('/bin/sleep'), { Entrypoint: ['/bin/sleep', 'infinity'] });
  return pauseArchive;
}

/** An image of host binaries (with their libraries) for small helper containers. */
export function hostToolsImage(tag: string, binaries: string[]): string {
  return hostFilesImage(tag, [...new Set(binaries.flatMap(withLibraries))], {});
}
