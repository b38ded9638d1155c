/**
 * Property-based tests over random flag and env values: parsing either yields a
 * config whose rules are well-formed, or refuses with a ConfigError/UsageError;
 * nothing a user types reaches the rule text except as a validated value.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { CAPTURE_FLAGS, ENV_ONLY } from '../../src/config/flags.js';
import { ConfigError, UsageError, parseCaptureConfig } from '../../src/config/parse.js';
import type { HostFacts } from '../../src/config/types.js';
import { parseCidr } from '../../src/net/ip.js';
import { renderIstioRestore } from '../../src/render/iptables.js';
import { renderNftTransaction } from '../../src/render/nftables.js';
import { buildRuleset } from '../../src/rules/build.js';
import { runCli } from '../helpers/cli.js';

const facts: HostFacts = {
  interfaceAddresses: () => ['127.0.0.1', '198.18.0.2', '::1', '2001:db8::2'],
  resolvConf: () => 'nameserver 198.18.0.53\nnameserver 2001:db8::53\n',
  lookupUid: () => undefined,
};

/** Values a user might type, hostile ones included. */
const hostile = fc.constantFrom(
  '80\n-A OUTPUT -j ACCEPT', 'eth0 -j DROP', '1;reboot', '-j', '$(id)', '`id`', '80,\t81', '*', '', ' ', '-1', '0x10',
  '10.0.0.0/8\n', 'eth0\u0000', 'ё', '../../etc', 'a'.repeat(300), '--flag', '!', '"', "'", '\\', '%',
);
const plausible = fc.oneof(
  fc.integer({ min: 0, max: 70000 }).map(String),
  fc.array(fc.integer({ min: 0, max: 70000 }), { minLength: 1, maxLength: 4 }).map((ports) => ports.join(',')),
  fc.constantFrom('*', '', '10.0.0.0/8', '2001:db8::/32', '10.0.0.0/33', '300.1.1.1/8', '::1/128', '127.0.0.1/8', 'eth0', 'eth0,eth1', 'TPROXY', 'REDIRECT', 'true', 'false', 'auto', 'legacy', 'nft', '1337', 'java,202', '5s'),
);
const value = fc.oneof(hostile, plausible, fc.string({ maxLength: 20 }), fc.string({ unit: 'binary', maxLength: 10 }));
const flagSpec = fc.constantFrom(...CAPTURE_FLAGS);
const argvEntry = fc.tuple(flagSpec, value, fc.constantFrom('long=', 'long', 'short')).map(([spec, v, form]) => {
  if (spec.kind === 'bool') return form === 'long=' ? [`--${spec.long}=${v}`] : [`--${spec.long}`];
  if (form === 'short' && spec.short) return [`-${spec.short}`, v];
  return form === 'long=' ? [`--${spec.long}=${v}`] : [`--${spec.long}`, v];
});
const envNames = [...CAPTURE_FLAGS.flatMap((f) => [f.env, f.additionalEnv]), ...Object.values(ENV_ONLY).map((e) => e.env)].filter(
  (name): name is string => name !== undefined && name !== 'DRY_RUN_FILE_PATH',
);
const envEntry = fc.tuple(fc.constantFrom(...envNames), value);

const SAFE_NAME = /^[A-Za-z0-9._@][A-Za-z0-9._@+-]*$/;
const VOCABULARY = new Set([
  '-A', '-I', '-N', '!', '-p', '-i', '-o', '-s', '-d', '-m', '-j', 'tcp', 'udp', 'owner', 'multiport', 'conntrack', 'mark', 'connmark',
  '--dport', '--dports', '--sport', '--uid-owner', '--gid-owner', '--ctstate', '--mark', '--to-ports', '--to-port', '--tproxy-mark',
  '--on-port', '--set-mark', '--save-mark', '--restore-mark', '--zone', 'RETURN', 'ACCEPT', 'DROP', 'REDIRECT', 'TPROXY', 'MARK',
  'CONNMARK', 'CT', 'INVALID', 'RELATED,ESTABLISHED', 'PREROUTING', 'OUTPUT', 'COMMIT', '*', 'nat', 'mangle', 'raw', 'filter',
]);

/** Every token of the restore text is vocabulary, a number, a port list, a prefix or a safe name. */
function assertWellFormed(lines: readonly string[]): void {
  for (const line of lines) {
    assert.doesNotMatch(line, /[\u0000-\u001f\u007f]/, `control character in ${JSON.stringify(line)}`);
    for (const token of line.split(' ')) {
      const ok =
        VOCABULARY.has(token) ||
        /^ISTIO_[A-Z_]+$/.test(token) ||
        /^\d+(,\d+)*$/.test(token) ||
        /^\d+\/0xffffffff$/.test(token) ||
        parseCidr(token) !== undefined ||
        SAFE_NAME.test(token);
      assert.ok(ok && token !== '', `unexpected token ${JSON.stringify(token)} in ${JSON.stringify(line)}`);
    }
    assert.ok(/^(\* (filter|mangle|nat|raw)|-N ISTIO_[A-Z_]+|-[AI] [A-Z_]+ .+|COMMIT)$/.test(line), `malformed line ${JSON.stringify(line)}`);
  }
}

test('random flags and env: either a well-formed ruleset or a one-line ConfigError/UsageError', () => {
  fc.assert(
    fc.property(fc.array(argvEntry, { maxLength: 6 }), fc.array(envEntry, { maxLength: 4 }), (entries, envs) => {
      const argv = entries.flat();
      const env = Object.fromEntries(envs);
      let config;
      try {
        config = parseCaptureConfig(argv, env, facts);
      } catch (error) {
        assert.ok(error instanceof ConfigError || error instanceof UsageError, `unexpected ${(error as Error)?.stack}`);
        assert.doesNotMatch((error as Error).message, /\n/, 'one line');
        return;
      }
      const ruleset = buildRuleset(config);
      for (const family of ['ipv4', 'ipv6'] as const) {
        const lines = renderIstioRestore(ruleset, family);
        assertWellFormed(lines);
        const expectedRuleLines = ruleset.rules.filter((r) => r.family === 'both' || r.family === family).length;
        if (family === 'ipv4' || ruleset.ipv6) {
          assert.equal(lines.filter((l) => /^-[AI] /.test(l)).length, expectedRuleLines, 'one line per rule: nothing smuggled in');
        }
      }
      for (const line of renderNftTransaction(ruleset)) {
        assert.match(line, /^(add|flush|insert) (table|chain|rule) inet istio-proxy-(nat|mangle|raw)\b/);
        // Only a base-chain declaration may contain ';' (`{ type nat hook output priority -100 ; }`).
        const body = line.replace(/ \{ type \w+ hook \w+ priority -?\d+ ; \}$/, '').replace(/\{ \d+(, \d+)* \}/g, 'SET');
        assert.doesNotMatch(body, /[\u0000-\u001f;"'`$\\{}]/, `unexpected character in ${JSON.stringify(line)}`);
      }
    }),
    { numRuns: 3000, seed: 20261122 },
  );
});

test('the CLI never crashes on random input: exit 0 or 2, no stack trace, nothing on stdout when refused', () => {
  fc.assert(
    fc.property(fc.array(argvEntry, { maxLength: 5 }), fc.array(envEntry, { maxLength: 3 }), (entries, envs) => {
      // A NUL byte cannot be passed through exec at all; everything else can.
      if ([...entries.flat(), ...envs.flat()].some((text) => text.includes('\u0000'))) return;
      const result = runCli(['istio-iptables', '--dry-run', ...entries.flat()], { env: Object.fromEntries(envs) });
      assert.ok(result.code === 0 || result.code === 2, `exit ${result.code}: ${result.stderr}`);
      assert.doesNotMatch(result.stderr, /\n\s+at .+:\d+:\d+/, 'no stack trace');
      if (result.code === 2) assert.equal(result.stdout, '');
      // Native nftables prints its transaction (nothing when there is nothing to capture).
      else assert.match(result.stdout, /^(iptables-save\n|add table inet istio-proxy-|$)/);
    }),
    { numRuns: 60, seed: 7 },
  );
});
