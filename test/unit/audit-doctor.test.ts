/** meshcap doctor reads `meshcap audit --json` and explains each pod that is not ok, with its fix. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { auditJson } from '../../src/audit/render.js';
import type { PodAudit } from '../../src/audit/types.js';
import { runDoctor } from '../../src/cli/doctor.js';

const PODS: PodAudit[] = [
  { namespace: 'shop', pod: 'api', sandboxId: '1', layout: 'cni', state: 'ok', details: [] },
  { namespace: 'shop', pod: 'cart', sandboxId: '2', layout: 'cni', state: 'missing', details: ['no mesh chains or jumps in iptables-legacy, iptables-nft, nftables'] },
  { namespace: 'shop', pod: 'web', sandboxId: '3', layout: 'init-container', state: 'foreign-conflict', details: ["outbound TCP to 203.0.113.10:80 (uid 1000): decided by another tool's rule: nat: -A OUTPUT -p tcp -j ACCEPT"] },
];

async function doctor(args: string[], stdin: string): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const ctx = { env: {}, stdout: (t: string) => void (out += t), stderr: (t: string) => void (err += t), readStdin: async () => Buffer.from(stdin) };
  const code = await runDoctor(args, ctx, { runner: async () => ({ code: 127, stdout: '', stderr: '' }), readFile: async () => Buffer.from('') });
  return { code, out, err };
}

describe('doctor on audit --json', () => {
  test('text: every non-ok pod with its evidence, likely cause and fix; ok pods only counted', async () => {
    const { code, out, err } = await doctor(['-'], auditJson(PODS));
    assert.equal(code, 0, err);
    assert.match(out, /^meshcap audit: 3 pods audited, 1 ok, 2 not$/m);
    assert.match(out, /^shop\/cart: missing\n {2}meaning: .*bypasses the proxy.*\n {2}found: {3}no mesh chains[^\n]*\n {2}likely: .*startup race.*\n {2}fix: {5}run 'meshcap audit --repair'/m);
    assert.match(out, /^shop\/web: foreign-conflict\n[\s\S]*-A OUTPUT -p tcp -j ACCEPT[\s\S]*fix: {5}find the tool that owns the named rule/m);
    assert.doesNotMatch(out, /shop\/api/);
  });

  test('--json: the pods with meaning, causes and fix for each non-ok one', async () => {
    const { out } = await doctor(['--json', '-'], auditJson(PODS));
    const value = JSON.parse(out) as { pods: { pod: string; state: string; fix?: string }[] };
    assert.deepEqual(value.pods.map((p) => [p.pod, p.state, typeof p.fix]), [['api', 'ok', 'undefined'], ['cart', 'missing', 'string'], ['web', 'foreign-conflict', 'string']]);
  });

  test('other JSON is still a log to classify', async () => {
    const { out } = await doctor(['-'], '{"level":"error","msg":"iptables-restore: line 2 failed: Chain already exists."}\n');
    assert.doesNotMatch(out, /pods audited/);
  });
});
