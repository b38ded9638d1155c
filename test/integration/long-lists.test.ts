/**
 * A long exclude list against the real kernel: 3000 CIDRs make a capture long, so its writer
 * starts before the config is validated and a fresh family's restore input is streamed to
 * iptables-nft-restore as it renders (src/reconcile/early-writer.ts, src/render/streamed-text.ts).
 * Real connections prove the result: an address on the list goes direct, one off it is captured.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { FAR_V4, Lab, OUTSIDE_V4, labSkipReason } from '../helpers/netns.js';

const skip = labSkipReason();

/** 3000 prefixes of 198.19.0.0/16, with FAR_V4/32 in the middle of them. */
const EXCLUDES = Array.from({ length: 3000 }, (_, i) => `198.19.${i >> 4}.${(i & 15) * 16}/28`);
EXCLUDES.splice(1500, 0, `${FAR_V4}/32`);
const CONFIG = ['-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-x', EXCLUDES.join(','), '-b', '*', '-d', '15090,15021,15020', '--ipv6=false'];

const MODES = [
  { name: 'iptables-nft', args: ['--backend=nft'], excludes: async (lab: Lab) => (await lab.save('nft')).split('\n').filter((l) => /^-A ISTIO_OUTPUT -d 198\.(19|18\.1\.1\/32)/.test(l)).length },
  { name: 'native nftables', args: ['--native-nftables'], excludes: async (lab: Lab) => (await lab.nftRuleset()).split('\n').filter((l) => /ip daddr 198\.(19\.\S+|18\.1\.1) counter return/.test(l)).length },
  {
    name: 'native nftables with --cidr-sets',
    args: ['--native-nftables', '--cidr-sets'],
    excludes: async (lab: Lab) => {
      const listing = await lab.nftRuleset();
      assert.match(listing, /ip daddr @istio-exclude-v4 counter return/);
      return (listing.match(/198\.(19\.\d+\.\d+\/28|18\.1\.1)\b/g) ?? []).length;
    },
  },
] as const;

for (const mode of MODES) {
  describe(`a 3001-entry exclude list on ${mode.name}`, { skip }, () => {
    let lab: Lab;
    before(async () => {
      lab = Lab.create('long');
      await lab.serve(lab.outside, [8080], 'outside-app');
      await lab.serve(lab.pod, [15001, 15006], 'proxy');
    });
    after(async () => lab?.destroy());

    test('applies every entry; an excluded address goes direct, another is captured; a re-run changes nothing', async () => {
      const first = await lab.meshcap(['apply', ...CONFIG, ...mode.args]);
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stderr, /applied and verified|capture in place/);
      assert.equal(await mode.excludes(lab), 3001);
      const excluded = await lab.connect(lab.pod, FAR_V4, 8080);
      assert.equal(excluded.reply, `outside-app ${FAR_V4} 8080`, 'an address on the list is not captured');
      const captured = await lab.connect(lab.pod, OUTSIDE_V4, 8080);
      assert.match(captured.reply ?? captured.error ?? '', /^proxy \S+ 15001$/, 'an address off the list is captured');
      const again = await lab.meshcap(['apply', ...CONFIG, ...mode.args]);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stderr, /already in place, nothing to do/);
    });
  });
}
