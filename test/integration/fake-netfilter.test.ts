/**
 * The netfilter fake (test/helpers/fake-netfilter.ts) against the real tools
 * and kernel: the same restore inputs, on the same starting state, must give
 * the same exit code, the same error text and the same iptables-save output.
 * Each run happens in a throwaway network namespace (unshare -n), gone when
 * its shell exits.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { parseCaptureConfig } from '../../src/config/parse.js';
import type { HostFacts } from '../../src/config/types.js';
import { renderIstioRestore } from '../../src/render/iptables.js';
import { renderNftTransaction } from '../../src/render/nftables.js';
import { buildRuleset } from '../../src/rules/build.js';
import { type Family, FakeNetfilter, type Variant } from '../helpers/fake-netfilter.js';
import { labSkipReason } from '../helpers/netns.js';
import { BASE_ARGS, GOLDEN_CASES } from '../golden/cases.js';

const skip = labSkipReason();
const dir = mkdtempSync(join(tmpdir(), 'meshcap-fake-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const FACTS: HostFacts = { interfaceAddresses: () => [], resolvConf: () => '', lookupUid: () => undefined };
const base = (family: Family) => (family === 'ipv4' ? 'iptables' : 'ip6tables');

/** Table blocks in a stable order, counters zeroed, comments dropped (table order is the only thing the tools vary). */
function normalise(save: string): string {
  const text = save.split('\n').filter((line) => line !== '' && !line.startsWith('#')).map((line) => line.replace(/\[\d+:\d+\]/, '[0:0]')).join('\n');
  return text.split('COMMIT').map((block) => block.trim()).filter(Boolean).sort().join('\nCOMMIT\n');
}

interface Outcome {
  readonly code: number;
  readonly stderr: string;
  readonly save: string;
}

let counter = 0;
function real(variant: Variant, family: Family, before: string, input: string): Outcome {
  const pre = join(dir, `pre-${++counter}`);
  const main = join(dir, `in-${counter}`);
  writeFileSync(pre, before);
  writeFileSync(main, input);
  const tool = `${base(family)}-${variant}`;
  const script = `${tool}-restore --noflush < ${pre} || exit 99; ${tool}-restore --noflush < ${main} 2>${main}.err; echo $? > ${main}.rc; ${tool}-save`;
  const run = spawnSync('unshare', ['-n', 'sh', '-c', script], { encoding: 'utf8' });
  assert.notEqual(run.status, 99, `the starting state did not load: ${run.stderr}`);
  const read = (suffix: string) => spawnSync('cat', [`${main}${suffix}`], { encoding: 'utf8' }).stdout;
  return { code: Number(read('.rc').trim()), stderr: read('.err'), save: normalise(run.stdout) };
}

async function fake(variant: Variant, family: Family, before: string, input: string): Promise<Outcome> {
  const sys = new FakeNetfilter();
  const restore = `/usr/sbin/${base(family)}-${variant}-restore`;
  if (before !== '') assert.equal((await sys.run(restore, ['--noflush'], { input: before })).code, 0);
  const result = await sys.run(restore, ['--noflush'], { input });
  const save = await sys.run(`/usr/sbin/${base(family)}-${variant}-save`, []);
  return { code: result.code, stderr: result.stderr, save: normalise(save.stdout) };
}

const cidrOf = (family: Family) => (family === 'ipv4' ? '198.18.0.0/15' : '2001:db8::/32');

const istio = (args: readonly string[], family: Family, env: Record<string, string> = {}) =>
  `${renderIstioRestore(buildRuleset(parseCaptureConfig([...BASE_ARGS, ...args], env, FACTS)), family).join('\n')}\n`;

/** Starting states and inputs whose failures the engine must tell apart. */
const SCENARIOS: readonly { name: string; before: string | ((family: Family) => string); input: string | ((family: Family) => string) }[] = [
  { name: "Istio's restore run a second time (-N of existing chains)", before: (f) => istio(['-i', cidrOf(f), '--ipv6=true'], f), input: (f) => istio(['-i', cidrOf(f), '--ipv6=true'], f) },
  { name: '-D of a rule that is not there', before: '*nat\n:ISTIO_X - [0:0]\nCOMMIT\n', input: '*nat\n-D OUTPUT -j ISTIO_X\nCOMMIT\n' },
  { name: '-D of a rule jumping to a chain that is not there', before: '', input: '*nat\n-D OUTPUT -j ISTIO_Y\nCOMMIT\n' },
  { name: '-A jumping to a chain that is not there', before: '', input: '*nat\n-A OUTPUT -j ISTIO_Y\nCOMMIT\n' },
  { name: '-X of a chain a foreign rule jumps to', before: '*nat\n:FOREIGN - [0:0]\n:ISTIO_X - [0:0]\n-A FOREIGN -j ISTIO_X\nCOMMIT\n', input: '*nat\n-X ISTIO_X\nCOMMIT\n' },
  { name: '-X of a chain that is not there', before: '', input: '*nat\n-X ISTIO_NOPE\nCOMMIT\n' },
  { name: 'an unknown match', before: '', input: '*nat\n-A OUTPUT -m nosuchmatch -j RETURN\nCOMMIT\n' },
  { name: 'the second table fails: the first stays committed', before: '', input: '*nat\n:ISTIO_Z - [0:0]\n-A ISTIO_Z -j RETURN\nCOMMIT\n*mangle\n-A NOPE -j RETURN\nCOMMIT\n' },
  { name: 'an unknown group name', before: '', input: '*nat\n-A OUTPUT -m owner --gid-owner no-such-group-here -j RETURN\nCOMMIT\n' },
  {
    name: 'the reconcile input over an old capture (flush, delete, re-add)',
    before: (f) => istio(['-i', cidrOf(f), '-b', '*', '--ipv6=true'], f),
    input: '*nat\n:ISTIO_INBOUND - [0:0]\n:ISTIO_OUTPUT - [0:0]\n-D PREROUTING -p tcp -j ISTIO_INBOUND\n-A ISTIO_OUTPUT -j RETURN\nCOMMIT\n',
  },
];

describe('the netfilter fake agrees with the real tools', { skip }, () => {
  for (const variant of ['legacy', 'nft'] as const) {
    test(`${variant}: every Istio golden's restore input saves back the same`, async () => {
      for (const c of GOLDEN_CASES) {
        const args = [...c.args, `--ipv6=${c.ipv6}`, ...(c.dnsV4 !== undefined ? ['--dns-servers-v4', c.dnsV4] : []), ...(c.dnsV6 !== undefined ? ['--dns-servers-v6', c.dnsV6] : [])];
        for (const family of c.ipv6 ? (['ipv4', 'ipv6'] as const) : (['ipv4'] as const)) {
          const input = istio(args, family, c.env);
          assert.deepEqual(await fake(variant, family, '', input), real(variant, family, '', input), `${c.name} ${family}`);
        }
      }
    });
    for (const scenario of SCENARIOS) {
      test(`${variant}: ${scenario.name}`, async () => {
        for (const family of ['ipv4', 'ipv6'] as const) {
          const before = typeof scenario.before === 'string' ? scenario.before : scenario.before(family);
          const input = typeof scenario.input === 'string' ? scenario.input : scenario.input(family);
          assert.deepEqual(await fake(variant, family, before, input), real(variant, family, before, input), family);
        }
      });
    }
  }
});

/** `nft -f -` of `before`, then of `input`, then `nft list ruleset inet`, in a throwaway namespace. */
function realNft(before: string, input: string): Outcome {
  const pre = join(dir, `nft-pre-${++counter}`);
  const main = join(dir, `nft-in-${counter}`);
  writeFileSync(pre, before);
  writeFileSync(main, input);
  const run = spawnSync('unshare', ['-n', 'sh', '-c', `nft -f ${pre} || exit 99; nft -f - < ${main} 2>${main}.err; echo $? > ${main}.rc; nft list ruleset inet`], { encoding: 'utf8' });
  assert.notEqual(run.status, 99, `the starting state did not load: ${run.stderr}`);
  const read = (suffix: string) => spawnSync('cat', [`${main}${suffix}`], { encoding: 'utf8' }).stdout;
  return { code: Number(read('.rc').trim()), stderr: read('.err'), save: run.stdout };
}

async function fakeNft(before: string, input: string): Promise<Outcome> {
  const sys = new FakeNetfilter();
  if (before.trim() !== '') sys.loadNft(before);
  const result = await sys.run('/usr/sbin/nft', ['-f', '-'], { input });
  return { code: result.code, stderr: result.stderr, save: sys.nftListing() };
}

const NFT_SCENARIOS: readonly { name: string; before: string; input: string }[] = [
  { name: 'deleting a table that is not there fails the whole transaction', before: '', input: 'add table inet t\ndelete table inet nope\n' },
  { name: 'flushing a table that is not there', before: '', input: 'flush table inet nope\n' },
  { name: 'a rule in a chain that is not there', before: 'add table inet foreign\n', input: 'add rule inet foreign nochain counter return\n' },
  { name: 'an unknown group name', before: '', input: 'add table inet t\nadd chain inet t c\nadd rule inet t c skgid != no-such-group-here counter return\n' },
  { name: 'the cleanup input (add, then delete) on a table that is there', before: 'add table inet istio-proxy-nat\nadd chain inet istio-proxy-nat c\n', input: 'add table inet istio-proxy-nat\ndelete table inet istio-proxy-nat\n' },
];

describe('the netfilter fake agrees with the real nft', { skip }, () => {
  test("every Istio nftables golden's transaction lists back the same", async () => {
    for (const c of GOLDEN_CASES) {
      const args = [...BASE_ARGS, ...c.args, `--ipv6=${c.ipv6}`, '--native-nftables', ...(c.dnsV4 !== undefined ? ['--dns-servers-v4', c.dnsV4] : []), ...(c.dnsV6 !== undefined ? ['--dns-servers-v6', c.dnsV6] : [])];
      const input = `${renderNftTransaction(buildRuleset(parseCaptureConfig(args, c.env ?? {}, FACTS))).join('\n')}\n`;
      assert.deepEqual(await fakeNft('', input), realNft('', input), c.name);
    }
  });
  for (const scenario of NFT_SCENARIOS) {
    test(scenario.name, async () => {
      assert.deepEqual(await fakeNft(scenario.before, scenario.input), realNft(scenario.before, scenario.input));
    });
  }
});
