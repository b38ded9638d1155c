/**
 * istio-init as Kubernetes runs it: the container `meshcap inject` writes (image, command, args, env,
 * securityContext), translated the way the kubelet does and run in a real sandbox of a private containerd.
 * Rules are read back from the pod's netns and the capture is proven with real connections.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RuntimeNode, runtimeSkip, type ContainerRun, type Sandbox } from './harness.js';
import { kubeletContainer, KubeletConfigError, type K8sContainer, type K8sSecurityContext, type KubeletOptions } from './kubelet.js';
import { connectFrom, injectPod, ISTIO_15_RULES, istioInit, MESHCAP_IMAGE, startNodeWithImage, meshRules, podRules, serveIn, STACK_TRACE, type InjectedPod } from './fixtures.js';

const skip = runtimeSkip();
/** An address outside every pod: captured traffic to it must land on the proxy port inside the pod. */
const OUTSIDE = '198.18.255.254';
const APP_UID = 65534;

describe('istio-init under containerd (CRI), from `meshcap inject` output', { skip }, () => {
  let node: RuntimeNode;
  let injected: InjectedPod;
  let init: K8sContainer;
  let pods = 0;

  before(async () => {
    node = await startNodeWithImage('init');
    injected = injectPod();
    init = istioInit(injected);
  });
  after(() => node?.stop());

  const newPod = (name = `init-${++pods}`) => node.runSandbox({ name, namespace: 'demo', annotations: injected.annotations, labels: injected.labels });

  /** The injected istio-init with changes: extra args, a securityContext patch, env, volumes. */
  function variant(change: { extraArgs?: string[]; security?: Partial<K8sSecurityContext>; env?: Record<string, string>; mounts?: K8sContainer['volumeMounts'] } = {}): K8sContainer {
    return {
      ...init,
      args: [...(init.args ?? []), ...(change.extraArgs ?? [])],
      securityContext: { ...init.securityContext, ...change.security },
      env: [...(init.env ?? []), ...Object.entries(change.env ?? {}).map(([name, value]) => ({ name, value }))],
      volumeMounts: [...(init.volumeMounts ?? []), ...(change.mounts ?? [])],
    };
  }

  const runInit = (pod: Sandbox, container: K8sContainer, options: KubeletOptions = {}): Promise<ContainerRun> => pod.run(kubeletContainer(container, pod, options));

  /** The app's outbound lands on the proxy's 15001; the proxy's (uid 1337) goes out untouched. */
  async function assertCaptured(pod: Sandbox): Promise<void> {
    const proxy = await serveIn(pod.netnsPath, [15001, 15006], 'proxy');
    const outside = await serveIn(node.netnsPath, [18080], 'node');
    try {
      const app = connectFrom(pod.netnsPath, OUTSIDE, 80, APP_UID);
      assert.equal(app.ok, true, JSON.stringify(app));
      assert.match(app.reply ?? '', / 15001$/, `the app's connection to ${OUTSIDE}:80 did not land on 15001: ${app.reply}`);
      const gateway = pod.ip.replace(/\.\d+$/, '.1');
      const own = connectFrom(pod.netnsPath, gateway, 18080, 1337);
      assert.equal(own.reply, `node ${gateway} 18080`, `uid 1337's own traffic was captured: ${JSON.stringify(own)}`);
    } finally {
      await proxy.stop();
      await outside.stop();
    }
  }

  it("Istio's exact securityContext: exit 0, the 18 mesh rules in iptables-nft, the app's traffic captured", async () => {
    assert.deepEqual(init.securityContext, {
      allowPrivilegeEscalation: false,
      capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] },
      privileged: false,
      readOnlyRootFilesystem: false,
      runAsGroup: 0,
      runAsNonRoot: false,
      runAsUser: 0,
    });
    assert.equal(init.image, MESHCAP_IMAGE);
    const pod = await newPod();
    const run = await runInit(pod, init);
    assert.equal(run.exitCode, 0, run.log);
    assert.match(run.log, /capture in place \(iptables-nft\)/);
    assert.doesNotMatch(run.log, STACK_TRACE);
    const rules = podRules(pod, 'nft');
    assert.equal(meshRules(rules).length, 18, rules);
    assert.deepEqual(meshRules(podRules(pod, 'legacy')), []);
    await assertCaptured(pod);
    await pod.remove();
  });

  it('the incident: the exited istio-init is removed (container GC, docker system prune) and created again: exit 0, already in place, rules byte for byte the same', async () => {
    const pod = await newPod();
    const first = await runInit(pod, init, { attempt: 0 });
    assert.equal(first.exitCode, 0, first.log);
    const before = podRules(pod, 'nft');
    await node.cri.removeContainer(first.id);
    assert.deepEqual(await node.cri.listContainers({ pod_sandbox_id: pod.id }), []);
    for (const attempt of [1, 2]) {
      const again = await runInit(pod, init, { attempt });
      assert.equal(again.exitCode, 0, again.log);
      assert.match(again.log, /already in place, nothing to do \(iptables-nft\)/);
      assert.equal(podRules(pod, 'nft'), before);
      await node.cri.removeContainer(again.id);
    }
    await assertCaptured(pod);
    await pod.remove();
  });

  it("the incident over Istio 1.5's rules written by the old tool: the old tool's re-run fails at line 2, meshcap converges and then stays put", async () => {
    const pod = await newPod();
    // The old istio-init: iptables-restore --noflush of its rules, from the same image, Istio's securityContext.
    const oldTool: K8sContainer = { ...init, name: 'istio-init', command: ['/bin/sh', '-c', 'printf "%s" "$RULES" | iptables-legacy-restore --noflush'], args: [], env: [{ name: 'RULES', value: ISTIO_15_RULES }] };
    const old = await runInit(pod, oldTool, { attempt: 0 });
    assert.equal(old.exitCode, 0, old.log);
    const oldRules = meshRules(podRules(pod, 'legacy'));
    assert.ok(oldRules.includes('-A OUTPUT -p tcp -j ISTIO_OUTPUT'), oldRules.join('\n'));
    await node.cri.removeContainer(old.id);
    const oldAgain = await runInit(pod, oldTool, { attempt: 1 });
    assert.notEqual(oldAgain.exitCode, 0);
    assert.match(oldAgain.log, /line 2 failed/);
    await node.cri.removeContainer(oldAgain.id);

    const converge = await runInit(pod, init, { attempt: 2 });
    assert.equal(converge.exitCode, 0, converge.log);
    assert.match(converge.log, /iptables-legacy already holds \d+ mesh rules/);
    assert.match(converge.log, /capture in place \(iptables-legacy\)/);
    const converged = podRules(pod, 'legacy');
    assert.doesNotMatch(converged, /--dport 22 /);
    assert.doesNotMatch(converged, /-A OUTPUT -p tcp -j ISTIO_OUTPUT/);
    assert.match(converged, /-A OUTPUT -j ISTIO_OUTPUT/);
    assert.equal(meshRules(converged).length, 18, converged);
    assert.deepEqual(meshRules(podRules(pod, 'nft')), []);
    await node.cri.removeContainer(converge.id);
    const again = await runInit(pod, init, { attempt: 3 });
    assert.equal(again.exitCode, 0, again.log);
    assert.match(again.log, /already in place, nothing to do \(iptables-legacy\)/);
    assert.equal(podRules(pod, 'legacy'), converged);
    await assertCaptured(pod);
    await pod.remove();
  });

  it('readOnlyRootFilesystem without a writable /run, nft: works', async () => {
    const pod = await newPod();
    const run = await runInit(pod, variant({ security: { readOnlyRootFilesystem: true } }));
    assert.equal(run.exitCode, 0, run.log);
    assert.match(run.log, /capture in place \(iptables-nft\)/);
    assert.equal(meshRules(podRules(pod, 'nft')).length, 18);
    await pod.remove();
  });

  /** Legacy needs /run/xtables.lock: exit 0, or exit 3 naming the read-only lock file and the fixes; never 1. */
  function assertLegacyReadOnlyOutcome(run: ContainerRun, pod: Sandbox): void {
    assert.notEqual(run.exitCode, 1, `exit 1 means "a bug": ${run.log}`);
    assert.doesNotMatch(run.log, STACK_TRACE);
    if (run.exitCode === 0) {
      assert.match(run.log, /capture in place \(iptables-legacy\)/);
      assert.equal(meshRules(podRules(pod, 'legacy')).length, 18);
      return;
    }
    assert.equal(run.exitCode, 3, run.log);
    assert.match(run.log, /\/run\/xtables\.lock/);
    assert.match(run.log, /read-only/i);
    assert.match(run.log, /emptyDir/);
    assert.match(run.log, /XTABLES_LOCKFILE/);
  }

  it('readOnlyRootFilesystem without a writable /run, legacy pinned: exit 3 naming the lock file and the fixes (never 1); with an emptyDir on /run it works', async () => {
    const pod = await newPod();
    const readOnly = { readOnlyRootFilesystem: true };
    const run = await runInit(pod, variant({ extraArgs: ['--backend=legacy'], security: readOnly }));
    assertLegacyReadOnlyOutcome(run, pod);
    if (run.exitCode !== 0) assert.deepEqual(meshRules(podRules(pod, 'legacy')), [], 'a failed run changed nothing');
    await node.cri.removeContainer(run.id);
    // The fix the message names: an emptyDir on /run.
    const fixed = await runInit(pod, variant({ extraArgs: ['--backend=legacy'], security: readOnly, mounts: [{ name: 'run', mountPath: '/run' }] }), {
      attempt: 1,
      volumes: [{ name: 'run', emptyDir: {} }],
    });
    assert.equal(fixed.exitCode, 0, fixed.log);
    assert.equal(meshRules(podRules(pod, 'legacy')).length, 18);
    await pod.remove();
  });

  it('readOnlyRootFilesystem without a writable /run, legacy auto-detected (Istio 1.5 rules in legacy): the same outcome, never exit 1', async () => {
    const pod = await newPod();
    const oldTool: K8sContainer = { ...init, command: ['/bin/sh', '-c', 'printf "%s" "$RULES" | iptables-legacy-restore --noflush'], args: [], env: [{ name: 'RULES', value: ISTIO_15_RULES }] };
    assert.equal((await runInit(pod, oldTool)).exitCode, 0);
    const run = await runInit(pod, variant({ security: { readOnlyRootFilesystem: true } }), { attempt: 1 });
    assertLegacyReadOnlyOutcome(run, pod);
    await pod.remove();
  });

  it("--run-validation under istio-init's capabilities: no crash, no stack trace, exit 0; no probe traffic leaves the pod", async () => {
    const pod = await newPod();
    // Count every TCP packet from the pod that reaches the node (its bridge) while the probes run.
    const table = `meshcap_watch_${pods}`;
    const nft = node.inNode('nft', ['-f', '-'], `table ip ${table} {\n chain watch_forward {\n  type filter hook forward priority 0;\n  ip saddr ${pod.ip} meta l4proto tcp counter\n }\n chain watch_input {\n  type filter hook input priority 0;\n  ip saddr ${pod.ip} meta l4proto tcp counter\n }\n}\n`);
    assert.equal(nft.code, 0, nft.stderr);
    const run = await runInit(pod, variant({ extraArgs: ['--run-validation'] }));
    assert.doesNotMatch(run.log, /unexpected internal error/);
    assert.doesNotMatch(run.log, STACK_TRACE);
    assert.equal(run.exitCode, 0, run.log);
    assert.match(run.log, /capture in place \(iptables-nft\)/);
    // The probes that switch uid need SETUID/SETGID: the output says so plainly.
    assert.match(run.log, /SETUID/);
    const counters = node.inNode('nft', ['list', 'table', 'ip', table]).stdout;
    assert.doesNotMatch(counters, /packets [1-9]/, `validation probes sent TCP out of the pod:\n${counters}`);
    node.inNode('nft', ['delete', 'table', 'ip', table]);
    await node.cri.removeContainer(run.id);

    // With SETUID and SETGID every probe runs.
    const withSetuid = await runInit(pod, variant({ extraArgs: ['--run-validation'], security: { capabilities: { add: ['NET_ADMIN', 'NET_RAW', 'SETUID', 'SETGID'], drop: ['ALL'] } } }), { attempt: 1 });
    assert.equal(withSetuid.exitCode, 0, withSetuid.log);
    assert.doesNotMatch(withSetuid.log, STACK_TRACE);
    assert.doesNotMatch(withSetuid.log, /needs? (CAP_)?SETUID/i);
    await pod.remove();
  });

  it('a non-root runAsUser with the capabilities: exit 4 with the fix, nothing changed', async () => {
    const pod = await newPod();
    const run = await runInit(pod, variant({ security: { runAsUser: 1000, runAsGroup: 1000, runAsNonRoot: true } }));
    assert.equal(run.exitCode, 4, run.log);
    assert.match(run.log, /uid 1000/);
    assert.match(run.log, /runAsUser: 0|as uid 0/);
    assert.doesNotMatch(run.log, STACK_TRACE);
    assert.deepEqual(meshRules(podRules(pod, 'nft')), []);
    await pod.remove();
  });

  it('the kubelet refuses runAsNonRoot with uid 0 before the runtime sees it (what a mistyped template gets)', async () => {
    const pod = await newPod();
    assert.throws(() => kubeletContainer(variant({ security: { runAsNonRoot: true } }), pod), KubeletConfigError);
    await pod.remove();
  });

  it('NET_ADMIN alone: nft works; legacy, which really needs NET_RAW, exits 4 naming it', async () => {
    const pod = await newPod();
    const netAdminOnly = { capabilities: { add: ['NET_ADMIN'], drop: ['ALL'] } };
    const nft = await runInit(pod, variant({ security: netAdminOnly }));
    assert.equal(nft.exitCode, 0, nft.log);
    assert.match(nft.log, /capture in place \(iptables-nft\)/);
    assert.equal(meshRules(podRules(pod, 'nft')).length, 18);
    await pod.remove();

    const pod2 = await newPod();
    // What legacy really needs: its own restore fails with NET_ADMIN alone.
    const raw: K8sContainer = { ...init, securityContext: { ...init.securityContext, ...netAdminOnly }, command: ['/bin/sh', '-c', 'printf "*nat\\nCOMMIT\\n" | iptables-legacy-restore --noflush'], args: [] };
    const rawRun = await runInit(pod2, raw);
    assert.notEqual(rawRun.exitCode, 0, `iptables-legacy-restore worked without NET_RAW: ${rawRun.log}`);
    const legacy = await runInit(pod2, variant({ extraArgs: ['--backend=legacy'], security: netAdminOnly }), { attempt: 1 });
    assert.equal(legacy.exitCode, 4, legacy.log);
    assert.match(legacy.log, /CAP_NET_RAW/);
    assert.doesNotMatch(legacy.log, /CAP_NET_ADMIN and/);
    assert.deepEqual(meshRules(podRules(pod2, 'legacy')), []);
    await pod2.remove();
  });
});
