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

export function loadCorpus(): Fixture[] {
  const out: Fixture[] = [];
  for (const cause of readdirSync(FIXTURE_ROOT).sort()) {
    const dir = join(FIXTURE_ROOT, cause);
    if (!statSync(dir).isDirectory()) continue;
    for (const name of readdirSync(dir).sort()) {
      if (!name.endsWith('.txt')) continue;
      const path = join(dir, name);
      out.push({ cause, name, path, text: readFileSync(path, 'utf8') });
    }
  }
  return out;
}
