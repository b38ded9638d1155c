/**
 * The runtime harness itself: a private containerd in its own node namespace, driven through the CRI.
 * A sandbox gets a network namespace with an address from the test conflist, a container runs and exits
 * with its code and log, and stop() leaves no process, namespace, mount or directory behind.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { netnsPathFromInfo } from '../../src/cri/client.js';
import { hostToolsImage } from './images.js';
import { exec, RuntimeNode, runtimeSkip } from './harness.js';

const skip = runtimeSkip();

describe('runtime harness (private containerd through its CRI)', { skip }, () => {
  let node: RuntimeNode;
  const TOOLS = 'localhost/meshcap-test-tools:1';
  before(async () => {
    node = await RuntimeNode.start({ label: 'harness' });
    await node.importImage(hostToolsImage(TOOLS, ['/bin/sh', '/bin/cat', '/usr/bin/id']));
  });
  after(() => node?.stop());

  it('answers Version as runtime.v1', async () => {
    const version = await node.cri.version();
    assert.equal(version.runtime_name, 'containerd');
    assert.equal(version.runtime_api_version, 'v1');
  });

  it('runs a sandbox with annotations, an address from CNI and a netns path; a container exits with its code and log', async () => {
    const pod = await node.runSandbox({ name: 'web', namespace: 'demo', annotations: { 'sidecar.istio.io/status': '{}' } });
    assert.match(pod.ip, /^198\.18\.\d+\.\d+$/);
    assert.ok(existsSync(pod.netnsPath), pod.netnsPath);
    const addr = pod.exec('ip', ['-4', '-o', 'addr', 'show', 'dev', 'eth0']);
    assert.match(addr.stdout, new RegExp(`inet ${pod.ip.replaceAll('.', '\\.')}/24`));
    assert.match(pod.exec('ip', ['route', 'show', 'default']).stdout, /default via 198\.18\./);
    const listed = await node.cri.listPodSandbox({ label_selector: { 'io.kubernetes.pod.name': 'web' } });
    assert.deepEqual(listed.map((s) => s.id), [pod.id]);
    assert.equal(listed[0]!.annotations['sidecar.istio.io/status'], '{}');

    const run = await pod.run(
      pod.container({ name: 'probe', image: TOOLS, command: ['/bin/sh', '-c', 'id -u; cat /proc/self/net/dev >/dev/null; echo done >&2; exit 7'], securityContext: { run_as_user: { value: 0 } } }),
    );
    assert.equal(run.exitCode, 7);
    assert.equal(run.status.reason, 'Error');
    // stdout and stderr are separate pipes: their lines interleave in either order.
    assert.deepEqual(run.log.split('\n').sort(), ['', '0', 'done']);
    await node.cri.removeContainer(run.id);
    assert.deepEqual(await node.cri.listContainers({ pod_sandbox_id: pod.id }), []);
    await pod.remove();
    assert.deepEqual(await node.cri.listPodSandbox(), []);
    assert.equal(existsSync(pod.netnsPath), false);
  });

  it('netnsPathFromInfo reads containerd verbose info', () => {
    const info = { info: JSON.stringify({ runtimeSpec: { linux: { namespaces: [{ type: 'pid' }, { type: 'network', path: '/x/netns/cni-1' }] } } }) };
    assert.equal(netnsPathFromInfo(info), '/x/netns/cni-1');
    assert.equal(netnsPathFromInfo({}), undefined);
    assert.equal(netnsPathFromInfo({ info: 'not json' }), undefined);
  });

  it('stop() removes containerd, its shims, the node netns, mounts and the directory', async () => {
    const other = await RuntimeNode.start({ label: 'teardown' });
    const pod = await other.runSandbox({ name: 'left-running' });
    const pid = other.containerdPid;
    const dir = other.dir;
    assert.ok(existsSync(`/proc/${pid}`));
    await other.stop();
    const alive = existsSync(`/proc/${pid}`) && !/\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    assert.equal(alive, false, 'containerd still running');
    assert.equal(existsSync(dir), false);
    assert.equal(existsSync(pod.netnsPath), false);
    assert.doesNotMatch(exec('ip', ['netns', 'list']).stdout, new RegExp(other.netns));
    assert.doesNotMatch(readFileSync('/proc/self/mountinfo', 'utf8'), new RegExp(dir));
    assert.deepEqual(processesMentioning(dir), [], 'a process still names the node directory (a shim?)');
  });
});

function processesMentioning(text: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmdline.includes(text)) found.push(`${pid}: ${cmdline}`);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}
