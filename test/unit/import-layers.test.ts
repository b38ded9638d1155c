/** The import graph: cli/ on top, no file cycle (scripts/import-layers.mjs, run on src/). */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '../helpers/paths.js';

test('src/ has no import cycle and cli/ sits on top of the layers', () => {
  const run = spawnSync(process.execPath, [join(REPO_ROOT, 'scripts', 'import-layers.mjs'), join(REPO_ROOT, 'src')], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stdout + run.stderr);
  assert.match(run.stdout, /^file cycles: none$/m);
  assert.match(run.stdout, /^folder cycles: none$/m);
  assert.match(run.stdout, /^cli\/ is at L\d+ \(the top\)$/m);
  // The shared vocabulary is at the bottom.
  assert.match(run.stdout, /^ {2}L0: .*\(errors\).*\(log\)/m);
});
