/** The single executable (dist/sea/meshcap, scripts/build-sea.mjs) as the tests use it: current, or why not. */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './paths.js';

export const SINGLE_EXECUTABLE = join(REPO_ROOT, 'dist', 'sea', 'meshcap');

/**
 * Builds it when missing or older than any compiled source (a stale executable would test old
 * code; npm run build has run). Returns its path, or why this node builds none.
 */
export function currentSingleExecutable(): { path: string } | { problem: string } {
  const built = statSync(SINGLE_EXECUTABLE, { throwIfNoEntry: false })?.mtimeMs ?? 0;
  const sources = readdirSync(join(REPO_ROOT, 'dist', 'src'), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.js'))
    .map((e) => statSync(join(e.parentPath, e.name)).mtimeMs);
  const bundle = statSync(join(REPO_ROOT, 'dist', 'meshcap.cjs')).mtimeMs;
  if (built < Math.max(bundle, ...sources)) {
    const result = spawnSync(process.execPath, [join(REPO_ROOT, 'scripts', 'build-sea.mjs')], { encoding: 'utf8' });
    if (result.status !== 0 || !existsSync(SINGLE_EXECUTABLE)) return { problem: result.stderr.trim() || `build-sea.mjs exited ${result.status}` };
  }
  return { path: SINGLE_EXECUTABLE };
}
