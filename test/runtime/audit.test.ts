/**
 * The node audit against a real containerd driven through its CRI like the
 * kubelet: sandboxes carry the annotations `meshcap inject` writes; the
 * init-container layout's capture is made by the injected istio-init run as a
 * CRI container; the CNI layout's (`meshcap inject --cni`) by meshcap-cni,
 * chained after the node's bridge, at sandbox creation. The audit loop (the
 * agent's, driven as a library here; test/runtime/audit-agent.test.ts runs
 * the agent process) and `meshcap audit` then see the states the tests cause,
 * repair in place, and metrics show each.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import YAML from 'yaml';
import { desiredCapture } from '../../src/audit/desired.js';
import { AuditLoop } from '../../src/audit/loop.js';
import { DEFAULT_POLICY } from '../../src/audit/policy.js';
import type { AuditResult } from '../../src/audit/run.js';
import type { Sandbox as AuditSandbox } from '../../src/audit/types.js';
import { realSystem } from '../../src/backend/system.js';
import { CriClient } from '../../src/cri/client.js';
import { ensurePlugin } from '../helpers/cni-node.js';
import { podManifest } from '../helpers/manifests.js';
import { runAsync } from '../helpers/netns.js';
import { MESHCAP_BIN } from '../helpers/paths.js';
import { startNodeWithImage } from './fixtures.js';
import { inNetns, RuntimeNode, runtimeSkip, type Sandbox } from './harness.js';
import { type K8sContainer, kubeletContainer } from './kubelet.js';

const skip = runtimeSkip();
const INTERVAL_S = 1;

/** The pod's annotations and istio-init exactly as `meshcap inject` writes them for `annotations`. */
async function injected(annotations: Record<string, string>, layout: 'init' | 'cni'): Promise<{ annotations: Record<string, string>; init: K8sContainer }> {
  const result = await runAsync(process.execPath, [MESHCAP_BIN, 'inject', ...(layout === 'cni' ? ['--cni'] : []), '-f', '-'], { input: podManifest(annotations) });
  assert.equal(result.code, 0, result.stderr);
  const pod = YAML.parse(result.stdout) as { metadata: { annotations: Record<string, string> }; spec: { initContainers: K8sContainer[] } };
  const init = pod.spec.initContainers.find((c) => c.name === (layout === 'cni' ? 'istio-validation' : 'istio-init'));
  assert.ok(init, `the injector wrote the ${layout} layout`);
  return { annotations: pod.metadata.annotations, init };
}

function auditView(pod: Sandbox, annotations: Record<string, string>): AuditSandbox {
  return { id: pod.id, namespace: pod.config.metadata.namespace, name: pod.config.metadata.name, uid: pod.config.metadata.uid, ready: true, annotations, netnsPath: pod.netnsPath, addresses: [pod.ip] };
}

function must(result: { code: number; stderr: string }, what: string): void {
  assert.equal(result.code, 0, `${what}: ${result.stderr}`);
}

/** Polls the loop's audits until one satisfies `check`, or fails after `ms`. */
async function waitForAudit(audits: AuditResult[], check: (r: AuditResult) => boolean, ms: number, what: string): Promise<AuditResult> {
  const deadline = Date.now() + ms;
  for (let seen = 0; ; ) {
    for (; seen < audits.length; seen++) if (check(audits[seen]!)) return audits[seen]!;
    if (Date.now() > deadline) throw new Error(`${what}: not seen within ${ms} ms; last audit: ${JSON.stringify(audits.at(-1)?.pods.map((p) => [p.pod, p.state, p.details]))}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

const stateOf = (r: AuditResult, pod: string) => r.pods.find((p) => p.pod === pod);

describe('node audit under a real containerd (CRI)', { skip }, () => {
  let node: RuntimeNode;
  let loop: AuditLoop;
  const audits: AuditResult[] = [];
  const table: string[] = [];
  let web: Sandbox;
  let api: Sandbox;
  let plain: Sandbox;
  let webAnnotations: Record<string, string>;
  let apiAnnotations: Record<string, string>;
  const children: ChildProcess[] = [];
  const logs: string[] = [];

  before(async () => {
    node = await startNodeWithImage('audit');

    // Init-container layout: the injected istio-init, exactly as written (meshcap's image from the Dockerfile), run by the runtime.
    const webPod = await injected({}, 'init');
    webAnnotations = webPod.annotations;
    web = await node.runSandbox({ name: 'web', namespace: 'shop', annotations: webAnnotations });
    const run = await web.run(kubeletContainer(webPod.init, web));
    assert.equal(run.exitCode, 0, `istio-init failed:\n${run.log}`);

    // CNI layout: meshcap-cni in the node's chain captures the sandbox at creation (it skips web, which captures itself).
    const installed = await runAsync(process.execPath, [MESHCAP_BIN, 'cni', 'install', '--once', '--cni-conf-dir', join(node.dir, 'cni-conf'), '--cni-bin-dir', join(node.dir, 'cni-bin')], { env: { MESHCAP_CNI_PLUGIN: ensurePlugin() } });
    must(installed, 'meshcap cni install');
    apiAnnotations = (await injected({ 'traffic.sidecar.istio.io/includeInboundPorts': '8080' }, 'cni')).annotations;
    api = await node.runSandbox({ name: 'api', namespace: 'shop', annotations: apiAnnotations });
    assert.match(api.exec('iptables-nft-save', []).stdout, /ISTIO_INBOUND -p tcp -m tcp --dport 8080/, 'meshcap-cni captured api with its annotations');

    plain = await node.runSandbox({ name: 'plain', namespace: 'shop', annotations: { 'kubernetes.io/config.source': 'api' } });
    must(plain.exec('iptables-nft', ['-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '--dport', '9999', '-j', 'RETURN']), 'foreign rule in the uninjected pod');

    // The "proxy" in web's netns: where captured outbound connections land.
    const proxy = spawn('nsenter', [`--net=${web.netnsPath}`, '--', process.execPath, MESHCAP_BIN, 'probe-server', '--ports', '15001', '--tag', 'proxy'], { stdio: ['pipe', 'pipe', 'pipe'] });
    children.push(proxy);
    await new Promise<void>((resolve, reject) => {
      let out = '';
      proxy.stdout!.on('data', (c: Buffer) => ((out += c.toString()), out.includes('ready') && resolve()));
      proxy.on('close', () => reject(new Error(`probe server exited: ${out}`)));
    });

    loop = new AuditLoop({
      intervalSeconds: INTERVAL_S,
      repair: 'in-place',
      sys: realSystem(),
      openCri: async (socket) => new CriClient(socket, { timeoutMs: 10_000 }),
      onAudit: (result) => {
        audits.push(result);
        const row = result.pods.map((p) => `${p.pod}=${p.repair ? `${p.repair.before}->` : ''}${p.state}`).join(' ');
        if (table.at(-1)?.endsWith(row) !== true) table.push(`${new Date().toISOString().slice(11, 23)} ${row}`);
      },
    });
    loop.start({ criSocket: node.socket, log: (level, line) => logs.push(`${level} ${line}`) });
  });

  after(async () => {
    await loop?.stop();
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    await node?.stop();
  });

  test('both layouts audit ok; the uninjected sandbox is neither listed nor touched', async (t: TestContext) => {
    const rulesOfPlain = () => plain.exec('iptables-nft-save', ['-t', 'nat']).stdout.replace(/\[\d+:\d+\]/g, '').replace(/^#.*\n/gm, '');
    const before = rulesOfPlain();
    const first = await waitForAudit(audits, (r) => r.pods.length > 0, 30_000, 'first audit');
    assert.deepEqual(first.pods.map((p) => [p.namespace, p.pod, p.layout, p.state]), [
      ['shop', 'api', 'cni', 'ok'],
      ['shop', 'web', 'init-container', 'ok'],
    ]);
    assert.equal(rulesOfPlain(), before);
    assert.match(before, /--dport 9999 -j RETURN/);
    const metrics = loop.metrics();
    assert.match(metrics, /^meshcap_pod_capture_state\{namespace="shop",pod="web",state="ok"\} 1$/m);
    assert.doesNotMatch(metrics, /pod="plain"/);
    t.diagnostic(`first audit: ${first.durationMs} ms for ${first.pods.length} pods`);
  });

  test('meshcap audit --json through the CRI socket shows the same', async () => {
    const result = await runAsync(process.execPath, [MESHCAP_BIN, 'audit', '--cri-socket', node.socket, '--json']);
    assert.equal(result.code, 0, result.stderr);
    const value = JSON.parse(result.stdout) as { pods: { namespace: string; pod: string; state: string; details: string[] }[] };
    assert.deepEqual(value.pods.map((p) => [p.pod, p.state]), [['api', 'ok'], ['web', 'ok']]);
    const text = await runAsync(process.execPath, [MESHCAP_BIN, 'audit', '--cri-socket', node.socket]);
    assert.equal(text.stdout, 'shop/api  ok\nshop/web  ok\n');
  });

  test('a flushed nat table is missing within one audit period and repaired in place; a real connection proves it', async (t: TestContext) => {
    const gateway = web.ip.replace(/\.\d+$/, '.1');
    const connect = () => runAsync('nsenter', [`--net=${web.netnsPath}`, '--', process.execPath, MESHCAP_BIN, 'probe-connect', gateway, '8080', '--timeout', '2000']);
    const flushedAt = Date.now();
    must(web.exec('iptables-nft', ['-t', 'nat', '-F']), 'flush');
    // (The bypass itself, with a real connection, is shown by test/integration/audit.test.ts: here the agent may repair first.)
    const seen = audits.length;
    const repaired = await waitForAudit(audits, (r) => audits.indexOf(r) >= seen && stateOf(r, 'web')?.repair?.before === 'missing', (INTERVAL_S + 10) * 1000, 'repair of the flushed pod');
    const restoredMs = Date.now() - flushedAt;
    assert.equal(stateOf(repaired, 'web')?.state, 'ok', stateOf(repaired, 'web')?.details.join('\n'));
    assert.equal(stateOf(repaired, 'api')?.state, 'ok');
    const captured = JSON.parse((await connect()).stdout) as { ok: boolean; reply?: string };
    assert.match(captured.reply ?? '', /^proxy \S+ 15001$/, 'the app is captured again, with no restart');
    assert.match(loop.metrics(), /^meshcap_capture_repairs_total\{result="ok"\} [1-9]/m);
    assert.match(loop.metrics(), /^meshcap_capture_repairs_by_found_state_total\{state="missing"\} 1$/m);
    t.diagnostic(`flush -> capture restored: ${restoredMs} ms (audit interval ${INTERVAL_S} s)`);
  });

  test('rules rewritten to another configuration: drifted, then repaired', async () => {
    const desired = desiredCapture(auditView(api, apiAnnotations));
    assert.ok(desired.kind === 'capture');
    const other = [...desired.args];
    other[other.indexOf('-b') + 1] = '9090';
    const seen = audits.length;
    must(inNetns(api.netnsPath, process.execPath, [MESHCAP_BIN, 'apply', ...other]), 'rewrite');
    const repaired = await waitForAudit(audits, (r) => audits.indexOf(r) >= seen && stateOf(r, 'api')?.repair?.before === 'drifted', (INTERVAL_S + 10) * 1000, 'drift repaired');
    assert.equal(stateOf(repaired, 'api')?.state, 'ok');
    assert.ok(logs.some((l) => /audit: shop\/api drifted -> repaired -> ok/.test(l)), logs.join('\n'));
    assert.match(loop.metrics(), /^meshcap_capture_repairs_by_found_state_total\{state="drifted"\} 1$/m);
  });

  test('rules copied into the other iptables backend: duplicated-backend, reported and left alone', async () => {
    const seen = audits.length;
    must(web.exec('sh', ['-c', 'iptables-nft-save | iptables-legacy-restore']), 'copy to legacy');
    const dup = await waitForAudit(audits, (r) => audits.indexOf(r) >= seen && stateOf(r, 'web')?.state === 'duplicated-backend', (INTERVAL_S + 10) * 1000, 'duplicated-backend');
    assert.equal(stateOf(dup, 'web')?.repair, undefined);
    assert.match(loop.metrics(), /^meshcap_pod_capture_state\{namespace="shop",pod="web",state="duplicated-backend"\} 1$/m);
    assert.match(loop.metrics(), /^meshcap_pods_by_capture_state\{state="duplicated-backend"\} 1$/m);
    // The one-shot command sees it too, exits 1, and meshcap doctor explains it from its JSON.
    const json = await runAsync(process.execPath, [MESHCAP_BIN, 'audit', '--cri-socket', node.socket, '--json']);
    assert.equal(json.code, 1, json.stderr);
    const explained = await runAsync(process.execPath, [MESHCAP_BIN, 'doctor', '-'], { input: json.stdout });
    assert.equal(explained.code, 0, explained.stderr);
    assert.match(explained.stdout, /^shop\/web: duplicated-backend\n {2}meaning: [\s\S]*found: {3}mesh rules in iptables-legacy \(\d+\) and iptables-nft \(\d+\)[\s\S]*fix: {5}keep one/m);
    must(web.exec('sh', ['-c', 'iptables-legacy -t nat -F && iptables-legacy -t nat -X']), 'clean legacy');
    await waitForAudit(audits, (r) => audits.indexOf(r) > seen && stateOf(r, 'web')?.state === 'ok', (INTERVAL_S + 10) * 1000, 'ok again');
  });

  test('a pod that keeps being rewritten becomes foreign-conflict after two repairs, and is not repaired again', async () => {
    let fought: AuditResult | undefined;
    // Another "controller" flushes the capture whenever it sees it back.
    for (let round = 0; round < 6 && !fought; round++) {
      const seen = audits.length;
      must(web.exec('iptables-nft', ['-t', 'nat', '-F', 'ISTIO_OUTPUT']), 'rewrite');
      const next = await waitForAudit(audits, (r) => audits.indexOf(r) >= seen && stateOf(r, 'web') !== undefined && (stateOf(r, 'web')!.repair !== undefined || stateOf(r, 'web')!.state === 'foreign-conflict'), (INTERVAL_S + 10) * 1000, `round ${round}`);
      if (stateOf(next, 'web')!.state === 'foreign-conflict') fought = next;
    }
    assert.ok(fought, 'the fight is detected');
    const pod = stateOf(fought, 'web')!;
    assert.match(pod.details[0]!, /repaired 2 times .* another process keeps rewriting/);
    assert.ok(pod.details.some((d) => d.startsWith('found: ')));
    assert.ok(pod.details.includes("no other tool's rule is present: the rewriting process removes or replaces the mesh's own rules"), pod.details.join('\n'));
    // The whole test runs within one fight window: the flush test's repair counts too.
    const repairs = audits.flatMap((r) => r.pods.filter((p) => p.pod === 'web' && p.repair)).length;
    assert.equal(repairs, DEFAULT_POLICY.maxRepairs, 'exactly two repairs within the window, then none');
    // A further audit period: still foreign-conflict, still no repair, the rewrite left as it is.
    const seen = audits.length;
    const later = await waitForAudit(audits, (r) => audits.indexOf(r) >= seen, (INTERVAL_S + 10) * 1000, 'a later audit');
    assert.equal(stateOf(later, 'web')?.state, 'foreign-conflict');
    assert.equal(stateOf(later, 'web')?.repair, undefined);
    assert.doesNotMatch(web.exec('iptables-nft-save', ['-t', 'nat']).stdout, /^-A ISTIO_OUTPUT /m);
    assert.match(loop.metrics(), /^meshcap_pod_capture_state\{namespace="shop",pod="web",state="foreign-conflict"\} 1$/m);
    assert.match(loop.metrics(), /^meshcap_pods_by_capture_state\{state="foreign-conflict"\} 1$/m);
    assert.match(loop.metrics(), /^meshcap_capture_repairs_by_found_state_total\{state="partial"\} 1$/m);
  });

  test('meshcap audit --repair keeps its repair history in --history across runs: the third rewrite is foreign-conflict', async () => {
    // The loop has stopped repairing web (its own fight record); the one-shot command starts from an empty history file.
    const dir = mkdtempSync(join(tmpdir(), 'meshcap-audit-history-'));
    try {
      const history = join(dir, 'repairs.json');
      const run = () => runAsync(process.execPath, [MESHCAP_BIN, 'audit', '--cri-socket', node.socket, '--repair', '--history', history, '--json']);
      const states: string[] = [];
      for (let round = 1; round <= 3; round++) {
        must(web.exec('iptables-nft', ['-t', 'nat', '-F', 'ISTIO_OUTPUT']), 'rewrite');
        const result = await run();
        const pod = (JSON.parse(result.stdout) as { pods: { pod: string; state: string; repair?: { before: string } }[] }).pods.find((p) => p.pod === 'web')!;
        states.push(`${result.code}:${pod.repair ? `${pod.repair.before}->` : ''}${pod.state}`);
      }
      assert.deepEqual(states, ['0:partial->ok', '0:partial->ok', '1:foreign-conflict']);
      const saved = JSON.parse(readFileSync(history, 'utf8')) as { repairs: Record<string, number[]> };
      assert.equal(saved.repairs[web.id]?.length, 2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the state table as the agent saw it', (t: TestContext) => {
    for (const row of table) t.diagnostic(row);
    assert.ok(table.some((r) => /web=missing->ok/.test(r)) && table.some((r) => /api=drifted->ok/.test(r)) && table.some((r) => /web=duplicated-backend/.test(r)) && table.some((r) => /web=foreign-conflict/.test(r)), table.join('\n'));
  });
});
