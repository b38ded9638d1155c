/**
 * Errors are data: one hierarchy built from named fields, reported through the
 * logger (text, or one JSON line under --log_as_json), with stable exit codes.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { toolFailure } from '../../src/backend/tool-errors.js';
import { reportError } from '../../src/cli/report.js';
import { ConfigError } from '../../src/config/parse.js';
import { ExitCode, InvalidInputError, isMeshcapError, MeshcapError, UsageError } from '../../src/errors.js';
import { lineLogger } from '../../src/log.js';
import { runCli } from '../helpers/cli.js';

function capture(json: boolean) {
  const out: string[] = [];
  const ctx = { env: {}, stdout: (t: string) => out.push(`OUT:${t}`), stderr: (t: string) => out.push(t), readStdin: async () => Buffer.alloc(0) };
  return { ctx, out, log: lineLogger(ctx.stderr, { json }) };
}

const failedRun = {
  file: '/usr/sbin/iptables-nft-restore',
  args: ['--noflush'],
  code: 2,
  signal: null,
  stdout: '',
  stderr: "iptables-nft-restore v1.8.9 (nf_tables): unable to initialize table 'nat'\nError occurred at line: 1\n",
  notFound: false,
};

describe('errors', () => {
  test('ConfigError and UsageError are MeshcapErrors with exit code 2', () => {
    const config = new ConfigError('--envoy-port (-p)', '99999', 'is out of range', 'give 1 to 65535', 'from the command line');
    const usage = new UsageError('unknown flag: --bogus');
    for (const error of [config, usage]) {
      assert.ok(error instanceof MeshcapError && error instanceof InvalidInputError && isMeshcapError(error));
      assert.equal(error.exitCode, ExitCode.InvalidConfig);
    }
    assert.equal(config.message, 'invalid --envoy-port (-p) from the command line: "99999": is out of range; give 1 to 65535');
    assert.equal(config.what, 'invalid --envoy-port (-p) from the command line: "99999"');
    assert.equal(config.fix, 'give 1 to 65535');
  });

  test('a tool failure keeps the run, the output and whether the other backend may work', () => {
    const error = toolFailure(failedRun, { action: 'applying the IPv4 rules', input: '*nat\nCOMMIT\n' });
    assert.equal(error.exitCode, ExitCode.Unsupported);
    assert.equal(error.otherBackendMayWork, true);
    assert.equal(error.run?.file, failedRun.file);
    assert.equal(error.run?.code, 2);
    assert.match(error.output ?? '', /input line 1: \*nat/);
    const permission = toolFailure({ ...failedRun, stderr: 'iptables-restore: Permission denied (you must be root)' }, { action: 'x' });
    assert.equal(permission.otherBackendMayWork, false);
  });

  test('text report: what, cause, fix and output, as before', () => {
    const { ctx, out, log } = capture(false);
    const code = reportError(toolFailure(failedRun, { action: 'applying the IPv4 rules' }), ctx, 'apply', log);
    assert.equal(code, ExitCode.Unsupported);
    assert.equal(out.length, 1);
    assert.match(out[0]!, /^meshcap apply: error: applying the IPv4 rules: the kernel has no 'nat' table for this backend\n  cause: .*\n  fix: {3}.*\n  output:\n {4}iptables-nft-restore/);
  });

  test('under --log_as_json an error is one JSON line carrying its fields', () => {
    const { ctx, out, log } = capture(true);
    const cause = new Error('EACCES');
    const error = new MeshcapError({ exitCode: ExitCode.Permission, what: 'writing x', why: 'denied', fix: 'run as root', output: 'line 1\nline 2', cause });
    assert.equal(reportError(error, ctx, 'apply', log), ExitCode.Permission);
    assert.equal(out.length, 1);
    assert.ok(out[0]!.endsWith('\n') && !out[0]!.slice(0, -1).includes('\n'));
    const line = JSON.parse(out[0]!) as Record<string, unknown>;
    assert.equal(line.level, 'error');
    assert.equal(line.command, 'apply');
    assert.equal(line.what, 'writing x');
    assert.equal(line.why, 'denied');
    assert.equal(line.fix, 'run as root');
    assert.equal(line.output, 'line 1\nline 2');
    assert.equal(line.exitCode, 4);
    assert.equal(line.cause, 'EACCES');
    assert.equal(error.cause, cause);
  });

  test('a bug is exit 1 with its stack, as text or as one JSON line', () => {
    for (const json of [false, true]) {
      const { ctx, out, log } = capture(json);
      assert.equal(reportError(new TypeError('boom'), ctx, 'status', log), ExitCode.Unexpected);
      assert.equal(out.length, 1);
      if (json) assert.match(String((JSON.parse(out[0]!) as { stack: string }).stack), /TypeError: boom/);
      else assert.match(out[0]!, /unexpected internal error \(please report it\):\nTypeError: boom/);
    }
  });

  test("status's not-healthy is a named code that keeps its documented value", () => {
    assert.equal(ExitCode.NotHealthy, 1);
  });

  test('through the CLI: a refused flag under --log_as_json is one JSON line on stderr, and nothing runs', () => {
    // A dry run, so that the outcome does not depend on the namespace the tests run in: a capture
    // in this machine's own namespace is refused (host-guard.test.ts) before its values are read.
    const result = runCli(['apply', '--log_as_json', '--dry-run', '-p', '99999']);
    assert.equal(result.code, ExitCode.InvalidConfig);
    assert.equal(result.stdout, '');
    const lines = result.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, result.stderr);
    const line = JSON.parse(lines[0]!) as Record<string, unknown>;
    assert.equal(line.name, 'ConfigError');
    assert.match(String(line.what), /--envoy-port/);
  });
});
