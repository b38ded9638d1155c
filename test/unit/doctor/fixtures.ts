/** Locates the doctor corpus from the compiled test (dist/test/unit/doctor -> test/fixtures/doctor). */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export const FIXTURE_ROOT = fileURLToPath(new URL('../../../../test/fixtures/doctor/', import.meta.url));

export interface Fixture {
  readonly cause: string;
  readonly name: string;
  readonly path: string;
  readonly text: string;
}

/** Logs real users posted in public threads, kept apart from the hand-written corpus (see real/SOURCES.md). */
export const REAL_ROOT = join(FIXTURE_ROOT, 'real');

export function loadCorpus(root: string = FIXTURE_ROOT): Fixture[] {
  const out: Fixture[] = [];
  for (const cause of readdirSync(root).sort()) {
    if (root === FIXTURE_ROOT && cause === 'real') continue;
    const dir = join(root, cause);
    if (!statSync(dir).isDirectory()) continue;
    for (const name of readdirSync(dir).sort()) {
      if (!name.endsWith('.txt')) continue;
      const path = join(dir, name);
      out.push({ cause, name, path, text: readFileSync(path, 'utf8') });
    }
  }
  return out;
}
