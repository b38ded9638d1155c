/** Where the repository and the shared test data are, from the compiled test file. */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (tests run from dist/test/...). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const MESHCAP_BIN = join(REPO_ROOT, 'bin', 'meshcap');
export const SHARED_DIR = resolve(REPO_ROOT, '..', 'shared');
export const ANCHORS_DIR = join(SHARED_DIR, 'anchors');

/**
 * The anchors are read at test time, never copied. Outside CI a missing
 * ../shared skips those tests with a reason; in CI it is a failure.
 */
export function anchorsOrSkip(): { available: true } | { available: false; reason: string } {
  if (existsSync(ANCHORS_DIR)) return { available: true };
  if (process.env.CI === 'true') {
    throw new Error(`CI=true but the shared anchors are missing at ${ANCHORS_DIR}: the golden tests must run in CI`);
  }
  return { available: false, reason: `skipped: ${ANCHORS_DIR} not found (clone the project next to its shared/ folder)` };
}
