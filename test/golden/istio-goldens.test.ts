/**
 * The compatibility contract: every Istio capture golden, replayed through the
 * real CLI, must come out byte for byte (after trimming, as Istio compares).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { ANCHORS_DIR, anchorsOrSkip } from '../helpers/paths.js';
import { GOLDEN_CASES, caseArgs } from './cases.js';

const anchors = anchorsOrSkip();
const skip = anchors.available ? false : anchors.reason;

for (const [folder, nft] of [['capture', false], ['nftables-capture', true]] as const) {
  describe(`istio-iptables goldens: ${folder}`, { skip }, () => {
    const dir = join(ANCHORS_DIR, 'istio-iptables', folder);
    const files = skip ? [] : readdirSync(dir).filter((f) => f.endsWith('.golden'));

    test('every golden file has a case, and every case a golden file', () => {
      const expected = GOLDEN_CASES.filter((c) => nft || !c.nftOnly).map((c) => `${c.name}.golden`).sort();
      assert.deepEqual(files.slice().sort(), expected);
      assert.equal(files.length, nft ? 28 : 27);
    });

    for (const golden of GOLDEN_CASES.filter((c) => nft || !c.nftOnly)) {
      test(golden.name, () => {
        const want = readFileSync(join(dir, `${golden.name}.golden`), 'utf8').trim();
        const result = runCli(caseArgs(golden, nft), { env: golden.env ?? {} });
        assert.equal(result.code, 0, result.stderr);
        assert.equal(result.stdout.trim(), want);
      });
    }
  });
}
