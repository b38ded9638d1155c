/**
 * Whole pods in a real runtime: istio-init, then the proxy (a stand-in for Envoy from the meshcap image:
 * a listener on 15001/15006 as uid 1337 with the injected istio-proxy securityContext), then the app
 * container; and 20 sandboxes at once, each with its own istio-init.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RuntimeNode, runtimeSkip, type Sandbox } from './harness.js';
import { kubeletContainer, type K8sContainer } from './kubelet.js';
import { connectFrom, injectPod, istioInit, MESHCAP_IMAGE, startNodeWithImage, meshRules, podRules, serveIn, STACK_TRACE, type InjectedPod } from './fixtures.js';
import { until } from '../helpers/poll.js';

const skip = runtimeSkip();
const OUTSIDE = '198.18.255.254';

describe('pods under containerd (CRI): proxy and app, and many at once', { skip }, () => {
  let node: RuntimeNode;
  let injected: InjectedPod;

  before(async () => {
    node = await startNodeWithImage('pod');
    injected = injectPod({ name: 'web' });
  });
  after(() => node?.stop());

  it('proxy stand-in (uid 1337) + app container in one sandbox: app outbound lands on 15001, the proxy\'s own traffic is not captured, inbound lands on 15006', async () => {
    const pod = await node.runSandbox({ name: 'web', namespace: 'demo', annotations: injected.annotations, labels: injected.labels });
    const init = await pod.run(kubeletContainer(istioInit(injected), pod));
    assert.equal(init.exitCode, 0, init.log);

    // The injected istio-proxy's securityContext (uid 1337, read-only root, drop ALL), the meshcap image as the stand-in.
    const injectedProxy = injected.initContainers.find((c) => c.name === 'istio-proxy') ?? injected.containers.find((c) => c.name === 'istio-proxy');
    assert.ok(injectedProxy, 'inject wrote an istio-proxy container');
    assert.equal(injectedProxy.securityContext?.runAsUser, 1337);
    const proxy: K8sContainer = {
      name: 'istio-proxy',
      image: MESHCAP_IMAGE,
      command: ['/bin/sh', '-c', 'sleep 3600 | exec meshcap probe-server --ports 15001,15006 --tag proxy'],
      securityContext: injectedProxy.securityContext,
    };
    await pod.start(kubeletContainer(proxy, pod));
    // Ready when the listener answers over lo (uid 0 over lo is not captured).
    await until('the proxy stand-in listens', 30_000, () => {
      const answer = connectFrom(pod.netnsPath, '127.0.0.1', 15001, 0, 500);
      return answer.ok ? answer : undefined;
    });

    const nodeServer = await serveIn(node.netnsPath, [18080, 9080], 'node');
    try {
      // The app container (as injected: the image's user), connecting out.
      const app = injected.containers.find((c) => c.name === 'app')!;
      const appRun = await pod.run(kubeletContainer({ ...app, command: ['meshcap', 'probe-connect', OUTSIDE, '80'] }, pod));
      assert.equal(appRun.exitCode, 0, appRun.log);
      const answer = JSON.parse(appRun.log.trim().split('\n').pop()!) as { ok: boolean; reply?: string };
      // REDIRECT of a locally made packet: the proxy sees it on 127.0.0.1:15001 (it reads the original destination).
      assert.match(answer.reply ?? '', /^proxy 127\.0\.0\.1 15001$/, appRun.log);

      // The proxy's own outbound (uid 1337 inside the proxy's container) reaches the node untouched.
      const gateway = pod.ip.replace(/\.\d+$/, '.1');
      const own = await pod.run(kubeletContainer({ ...proxy, name: 'proxy-egress', command: ['meshcap', 'probe-connect', gateway, '18080'] }, pod));
      assert.equal(own.exitCode, 0, own.log);
      assert.match(own.log, new RegExp(`"reply":"node ${gateway.replaceAll('.', '\\.')} 18080"`));

      // Inbound from the node to the app's port lands on 15006.
      const inbound = connectFrom(node.netnsPath, pod.ip, 9080, 0);
      assert.equal(inbound.reply, `proxy ${pod.ip} 15006`, JSON.stringify(inbound));
    } finally {
      await nodeServer.stop();
    }
    await pod.remove();
  });

  it('20 sandboxes created in parallel, each with its istio-init: all captured, none fails on a lock', async () => {
    const count = 20;
    const results = await Promise.all(
      Array.from({ length: count }, async (_, i) => {
        const pod = await node.runSandbox({ name: `many-${i}`, namespace: 'demo', annotations: injected.annotations, labels: injected.labels });
        const run = await pod.run(kubeletContainer(istioInit(injected), pod), 180_000);
        return { pod, run };
      }),
    );
    const ips = new Set(results.map((r) => r.pod.ip));
    assert.equal(ips.size, count, 'every pod has its own address');
    for (const { pod, run } of results) {
      assert.equal(run.exitCode, 0, `${pod.config.metadata.name}: ${run.log}`);
      assert.match(run.log, /capture in place \(iptables-nft\)/);
      assert.doesNotMatch(run.log, /lock/i);
      assert.doesNotMatch(run.log, STACK_TRACE);
      assert.equal(meshRules(podRules(pod, 'nft')).length, 18, pod.config.metadata.name);
    }
    // Each capture is real: the app's connection in each pod lands on that pod's own 15001.
    const sample: Sandbox[] = [results[0]!.pod, results[count - 1]!.pod];
    for (const pod of sample) {
      const proxy = await serveIn(pod.netnsPath, [15001], 'proxy');
      try {
        assert.equal(connectFrom(pod.netnsPath, OUTSIDE, 80, 65534).reply, 'proxy 127.0.0.1 15001');
      } finally {
        await proxy.stop();
      }
    }
    await Promise.all(results.map((r) => r.pod.remove()));
  });
});
