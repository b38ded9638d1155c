/**
 * The IPv6 decision reads interface addresses from the kernel: an interface
 * without carrier (its veth peer down) still counts, as it does for Istio.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { POD_V4, POD_V6, labSkipReason, meshLines, withLab } from '../helpers/netns.js';

const skip = labSkipReason();
const ISTIO_ARGS = ['-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '', '-b', '*', '-d', '15090,15021,15020'];

describe('interface addresses from the kernel', { skip }, () => {
  test('an IPv6-only pod whose eth0 has no carrier gets IPv6 rules', async () => {
    await withLab('nocarrier', async (lab) => {
      for (const args of [['addr', 'del', `${POD_V4}/24`, 'dev', 'eth0'], ['route', 'flush', 'table', 'main']]) {
        const r = await lab.exec(lab.pod, ['ip', ...args]);
        assert.equal(r.code, 0, r.stderr);
      }
      assert.equal((await lab.exec(lab.outside, ['ip', 'link', 'set', 'eth0', 'down'])).code, 0);
      const link = await lab.exec(lab.pod, ['ip', '-o', 'link', 'show', 'eth0']);
      assert.match(link.stdout, /NO-CARRIER/, 'precondition: eth0 has no carrier');
      const addr = await lab.exec(lab.pod, ['ip', '-o', 'addr', 'show', 'dev', 'eth0']);
      assert.match(addr.stdout, new RegExp(POD_V6.replace(/:/g, ':')), 'precondition: eth0 keeps its IPv6 address');
      // What libuv sees here: no eth0 at all.
      const libuv = await lab.exec(lab.pod, [process.execPath, '-e', 'console.log(Object.keys(require("os").networkInterfaces()).join(","))']);
      assert.doesNotMatch(libuv.stdout, /eth0/, 'precondition: os.networkInterfaces() drops the interface');

      const result = await lab.meshcap(['istio-iptables', ...ISTIO_ARGS]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stderr, /IPv6 rules on: first address 2001:db8::2 is IPv6/);
      assert.ok(meshLines(await lab.save('nft', 6)).length > 0, 'IPv6 mesh rules are in place');
    });
  });
});
