import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CommandContext } from '../../../src/cli/context.js';
import { doctorCommand, runDoctor, type DoctorDeps } from '../../../src/cli/doctor.js';
import { ExitCode } from '../../../src/errors.js';
import type { Runner } from '../../../src/doctor/runner.js';
import { fakeKubectl, POD_JSON } from './fake-kubectl.js';

interface Captured {
  ctx: CommandContext;
  out: () => string;
  err: () => string;
}

function context(stdin = ''): Captured {
  let out = '';
  let err = '';
  return {
    ctx: {
      env: {},
      stdout: (t) => {
        out += t;
      },
      stderr: (t) => {
        err += t;
      },
      readStdin: async () => Buffer.from(stdin),
    },
    out: () => out,
    err: () => err,
  };
}

const FILES: Record<string, string> = {
  '/logs/istio-init.txt': '2026-03-14T08:12:31Z\terror\tiptables-restore: line 2 failed: Chain already exists.\n-N ISTIO_INBOUND\n',
};

function deps(runner?: Runner): DoctorDeps {
  return {
    runner: runner ?? (async () => ({ code: 127, stdout: '', stderr: 'kubectl: not found' })),
    readFile: async (path) => {
      const text = FILES[path];
      if (text === undefined) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: 'ENOENT' });
      return Buffer.from(text);
    },
  };
}

/** One line, "meshcap doctor: <what> — <why> — <fix>", and nothing like a stack trace. */
function assertUsageLine(err: string): void {
  const lines = err.trimEnd().split('\n');
  assert.equal(lines.length, 1, err);
  assert.match(lines[0] ?? '', /^meshcap doctor: .{1,200} — .{1,200} — .{1,300}$/);
  assert.doesNotMatch(err, /\n {4}at |Error:/);
}

describe('meshcap doctor CLI', () => {
  it('is exported as a Command', () => {
    assert.equal(typeof doctorCommand, 'function');
  });

  it('analyses a file and prints the human report (exit 0)', async () => {
    const c = context();
    const code = await runDoctor(['/logs/istio-init.txt'], c.ctx, deps());
    assert.equal(code, ExitCode.Ok);
    assert.match(c.out(), /^1\. rerun-existing-chains: /m);
    assert.match(c.out(), /^ {2}L1: .{0,80}line 2 failed/m);
    assert.equal(c.err(), '');
  });

  it('prints exactly the JSON document with --json', async () => {
    const c = context();
    const code = await runDoctor(['--json', '/logs/istio-init.txt'], c.ctx, deps());
    assert.equal(code, ExitCode.Ok);
    assert.equal(c.out().split('\n').length, 2, 'one JSON document on one line');
    const doc = JSON.parse(c.out()) as { causes: Array<Record<string, unknown>> };
    assert.deepEqual(Object.keys(doc), ['causes']);
    assert.equal(doc.causes[0]?.['id'], 'rerun-existing-chains');
    assert.deepEqual(Object.keys(doc.causes[0] ?? {}), ['id', 'title', 'confidence', 'evidence', 'explanation', 'fix']);
  });

  it("reads standard input with '-', including binary garbage (exit 0, unknown)", async () => {
    const c = context('\u0000\u0001\u00ff\ufffe garbage');
    const code = await runDoctor(['-', '--json'], c.ctx, deps());
    assert.equal(code, ExitCode.Ok);
    assert.equal((JSON.parse(c.out()) as { causes: Array<{ id: string }> }).causes[0]?.id, 'unknown');
  });

  it('answers unknown for an empty input, still exit 0', async () => {
    const c = context('');
    assert.equal(await runDoctor(['-'], c.ctx, deps()), ExitCode.Ok);
    assert.match(c.out(), /no known cause/);
  });

  for (const [argv, label] of [
    [['--bogus'], 'unknown flag'],
    [['--pod'], 'flag without its value'],
    [['a.txt', 'b.txt'], 'two inputs'],
    [['-n', 'shop', '/logs/istio-init.txt'], '-n without --pod'],
    [['--pod', '--kubeconfig=/etc/x'], 'pod name that looks like a flag'],
    [[], 'no input at all'],
  ] as const) {
    it(`rejects ${label} with exit 2 and one line`, async () => {
      const c = context();
      const code = await runDoctor(argv, c.ctx, deps());
      assert.equal(code, ExitCode.InvalidConfig);
      assertUsageLine(c.err());
      assert.equal(c.out(), '');
    });
  }

  it('rejects an unreadable file with exit 2, naming the file and the reason', async () => {
    const c = context();
    const code = await runDoctor(['/logs/missing.txt'], c.ctx, deps());
    assert.equal(code, ExitCode.InvalidConfig);
    assertUsageLine(c.err());
    assert.match(c.err(), /"\/logs\/missing\.txt" — no such file — /);
  });

  it('prints help with exit 0', async () => {
    const c = context();
    assert.equal(await runDoctor(['--help'], c.ctx, deps()), ExitCode.Ok);
    assert.match(c.out(), /^Usage: meshcap doctor \[FILE\|-\] \[--json\] \[--pod NAME \[-n NS\]\]/);
  });

  it('gathers with --pod through kubectl and analyses the result', async () => {
    const { runner, calls } = fakeKubectl(
      {
        'get pod web-1 -n shop -o json': { code: 0, stdout: POD_JSON, stderr: '' },
        'logs web-1 -n shop -c istio-init --previous': {
          code: 0,
          stdout: '2026-01-01T00:00:00.000000Z\terror\tCommand error output: xtables resource problem: Another app is currently holding the xtables lock. Perhaps you want to use the -w option?\n',
          stderr: '',
        },
      },
      { code: 1, stdout: '', stderr: 'error: not found' },
    );
    const c = context();
    const code = await runDoctor(['--pod', 'web-1', '-n', 'shop', '--json'], c.ctx, deps(runner));
    assert.equal(code, ExitCode.Ok);
    assert.equal(calls[0]?.join(' '), 'kubectl get pod web-1 -n shop -o json');
    const doc = JSON.parse(c.out()) as { causes: Array<{ id: string; evidence: Array<{ line: number; text: string }> }> };
    assert.equal(doc.causes[0]?.id, 'xtables-lock');
    assert.ok((doc.causes[0]?.evidence[0]?.line ?? 0) > 10, 'evidence line numbers count the gathered text');
  });

  it('puts a given file after the gathered text, under its own header', async () => {
    const { runner } = fakeKubectl({ 'get pod web-1 -o json': { code: 0, stdout: POD_JSON, stderr: '' } });
    const c = context();
    const code = await runDoctor(['--pod', 'web-1', '--json', '/logs/istio-init.txt'], c.ctx, deps(runner));
    assert.equal(code, ExitCode.Ok);
    const doc = JSON.parse(c.out()) as { causes: Array<{ id: string; evidence: Array<{ line: number; text: string }> }> };
    assert.equal(doc.causes[0]?.id, 'rerun-existing-chains');
    const quoted = doc.causes[0]?.evidence.find((e) => e.text.includes('line 2 failed'));
    assert.ok(quoted !== undefined && quoted.line > 20, 'file lines come after the gathered ones');
  });

  it('exits 3 with a plain message when kubectl is missing and nothing else was given', async () => {
    const c = context();
    const code = await runDoctor(['--pod', 'web-1'], c.ctx, deps());
    assert.equal(code, ExitCode.Unsupported);
    assert.match(c.err(), /kubectl was not found on PATH/);
    assert.equal(c.err().trimEnd().split('\n').length, 1);
    assert.equal(c.out(), '');
  });

  it('still analyses a given file when kubectl is missing (exit 0)', async () => {
    const c = context();
    const code = await runDoctor(['--pod', 'web-1', '/logs/istio-init.txt'], c.ctx, deps());
    assert.equal(code, ExitCode.Ok);
    assert.match(c.err(), /kubectl was not found on PATH/);
    assert.match(c.out(), /rerun-existing-chains/);
  });
});
