/** `meshcap audit` as a command, against a stand-in CRI (a fake SandboxSource, named as one): usage, output, errors. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { makeAuditCommand, type OpenCri } from '../../src/cli/audit.js';
import { ExitCode, MeshcapError } from '../../src/errors.js';

async function run(argv: string[], openCri: OpenCri) {
  let out = '';
  let err = '';
  const code = await makeAuditCommand(openCri)(argv, { env: { PATH: process.env.PATH }, stdout: (t) => void (out += t), stderr: (t) => void (err += t), readStdin: async () => Buffer.from('') });
  return { code, out, err };
}

const uninjectedOnly: OpenCri = async () => ({
  listPodSandbox: async () => [{ id: 'a', metadata: { name: 'coredns', namespace: 'kube-system', uid: 'u' }, state: 'SANDBOX_READY', annotations: {} }],
  podSandboxStatus: async () => assert.fail('an uninjected sandbox is never looked at'),
  close() {},
});

describe('meshcap audit (stand-in CRI)', () => {
  test('a node without injected pods: says so, exit 0; --json is the documented empty shape', async () => {
    const text = await run(['--cri-socket', '/x.sock'], uninjectedOnly);
    assert.deepEqual([text.code, text.out], [0, 'no injected pods on this node\n']);
    const json = await run(['--cri-socket', '/x.sock', '--json'], uninjectedOnly);
    assert.deepEqual(JSON.parse(json.out), { pods: [] });
  });

  test('usage mistakes are one line and exit 2, before the runtime is contacted', async () => {
    const never: OpenCri = async () => assert.fail('the CRI must not be opened');
    for (const argv of [['--bogus'], ['--repair-window', '0'], ['--repair-window', 'ten'], ['extra']]) {
      const r = await run(argv, never);
      assert.equal(r.code, ExitCode.InvalidConfig, argv.join(' '));
      assert.equal(r.err.trimEnd().split('\n').length <= 2, true, r.err);
      assert.doesNotMatch(r.err, /\n {4}at /);
    }
  });

  test('a runtime that does not answer: what, why and fix, exit 3', async () => {
    const down: OpenCri = async () => {
      throw new MeshcapError({ exitCode: ExitCode.Unsupported, what: 'CRI ListPodSandbox on /x.sock failed', why: 'the runtime does not answer on /x.sock', fix: 'check that containerd runs' });
    };
    const r = await run(['--cri-socket', '/x.sock'], down);
    assert.equal(r.code, ExitCode.Unsupported);
    assert.match(r.err, /CRI ListPodSandbox on \/x\.sock failed[\s\S]*does not answer[\s\S]*check that containerd runs/);
    assert.equal(r.out, '');
  });

  test('--help lists every state', async () => {
    const r = await run(['--help'], uninjectedOnly);
    for (const state of ['ok', 'missing', 'partial', 'drifted', 'duplicated-backend', 'foreign-conflict', 'unreadable']) assert.match(r.out, new RegExp(`^ {2}${state} `, 'm'));
  });
});
