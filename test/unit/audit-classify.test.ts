/** The audit's pure parts: desired capture from annotations, one state per live capture, the repair policy, rendering, metrics. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { classifyCapture } from '../../src/audit/classify.js';
import { desiredCapture } from '../../src/audit/desired.js';
import { AuditMetrics } from '../../src/audit/metrics.js';
import { DEFAULT_POLICY, decide, historyFromJson, historyToJson, pruneHistory, recordRepair } from '../../src/audit/policy.js';
import { auditJson, renderAuditText } from '../../src/audit/render.js';
import type { PodAudit, Sandbox } from '../../src/audit/types.js';
import type { CaptureConfig } from '../../src/config/types.js';
import { parseCaptureConfig } from '../../src/config/parse.js';
import { buildRuleset } from '../../src/rules/build.js';
import type { AuditRead } from '../../src/audit/classify.js';
import { simRulesetFromConfig } from '../../src/trace/from-config.js';
import { saveTextOf } from '../helpers/sim.js';

const STATUS = JSON.stringify({ initContainers: ['istio-init'], containers: ['istio-proxy'], volumes: null, imagePullSecrets: null, revision: 'default' });
const CNI_STATUS = JSON.stringify({ initContainers: ['istio-validation'], containers: ['istio-proxy'], volumes: null, imagePullSecrets: null, revision: 'default' });

function sandbox(annotations: Record<string, string>, name = 'web'): Sandbox {
  return { id: `id-${name}`, namespace: 'shop', name, uid: `uid-${name}`, ready: true, annotations, netnsPath: '/run/netns/x', addresses: ['198.18.0.2'] };
}

function desiredConfig(annotations: Record<string, string>): CaptureConfig {
  const d = desiredCapture(sandbox(annotations));
  assert.equal(d.kind, 'capture');
  return d.kind === 'capture' ? d.config : (undefined as never);
}

const FACTS = { interfaceAddresses: () => ['198.18.0.2'], resolvConf: () => undefined, lookupUid: () => undefined };
/** The save text a config's rules would leave in a namespace (IPv4 only: the pod has no IPv6). */
function saveOf(args: readonly string[]): string {
  return saveTextOf(simRulesetFromConfig(buildRuleset(parseCaptureConfig(args, {}, FACTS)), 'ipv4'));
}

function read(parts: { legacy?: string; nft?: string; nftables?: string }): AuditRead {
  return {
    legacy: { variant: 'legacy', saves: { ipv4: parts.legacy ?? '', ipv6: '' } },
    nft: { variant: 'nft', saves: { ipv4: parts.nft ?? '', ipv6: '' } },
    nftables: parts.nftables ?? '',
    ipRules: {},
    routeTables: {},
  };
}

const DEFAULT_ARGS = desiredCapture(sandbox({ 'sidecar.istio.io/status': STATUS }));
const ARGS = DEFAULT_ARGS.kind === 'capture' ? DEFAULT_ARGS.args : [];

describe('desired capture from annotations', () => {
  test('uninjected, opted-out and NONE pods are not audited', () => {
    assert.equal(desiredCapture(sandbox({})).kind, 'not-injected');
    assert.equal(desiredCapture(sandbox({ 'sidecar.istio.io/status': STATUS, 'sidecar.istio.io/inject': 'false' })).kind, 'not-injected');
    assert.equal(desiredCapture(sandbox({ 'sidecar.istio.io/status': STATUS, 'sidecar.istio.io/interceptionMode': 'NONE' })).kind, 'not-injected');
  });

  test('the layout comes from the status annotation; the args from the traffic annotations', () => {
    const init = desiredCapture(sandbox({ 'sidecar.istio.io/status': STATUS, 'traffic.sidecar.istio.io/includeInboundPorts': '8080' }));
    const cni = desiredCapture(sandbox({ 'sidecar.istio.io/status': CNI_STATUS }));
    assert.ok(init.kind === 'capture' && cni.kind === 'capture');
    assert.equal(init.layout, 'init-container');
    assert.equal(cni.layout, 'cni');
    assert.deepEqual(init.args.slice(init.args.indexOf('-b'), init.args.indexOf('-b') + 2), ['-b', '8080']);
    assert.equal(init.config.inboundPorts.kind, 'list');
  });

  test("of a pod's proxyMetadata only what shapes the rules reaches the repair (no file paths, namespaces or binaries)", () => {
    const proxyConfig = ['proxyMetadata:', '  ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE: "7"', '  DRY_RUN: "true"', '  DRY_RUN_FILE_PATH: /host/etc/cni/net.d/00-x.conflist',
      '  NETWORK_NAMESPACE: /proc/1/ns/net', '  FORCE_IPTABLES_BINARY: legacy', ''].join('\n');
    const d = desiredCapture(sandbox({ 'sidecar.istio.io/status': CNI_STATUS, 'proxy.istio.io/config': proxyConfig }));
    assert.equal(d.kind, 'capture');
    if (d.kind !== 'capture') return;
    assert.deepEqual(d.env, { ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE: '7' });
    assert.equal(d.config.dryRun, false);
    assert.equal(d.config.dryRunFilePath, '');
    assert.equal(d.config.networkNamespace, '');
  });

  test('an invalid annotation is reported as such, not guessed', () => {
    const d = desiredCapture(sandbox({ 'sidecar.istio.io/status': STATUS, 'traffic.sidecar.istio.io/includeInboundPorts': '99999' }));
    assert.equal(d.kind, 'invalid');
    assert.match(d.kind === 'invalid' ? d.problem : '', /includeInboundPorts/);
  });
});

describe('classify', () => {
  const config = desiredConfig({ 'sidecar.istio.io/status': STATUS });
  const good = saveOf(ARGS);

  test('ok: the desired capture in one backend', () => {
    assert.deepEqual(classifyCapture(read({ nft: good }), config, ['198.18.0.2']), { state: 'ok', details: [], holder: 'iptables-nft' });
    assert.deepEqual(classifyCapture(read({ legacy: good }), config, ['198.18.0.2']).state, 'ok');
  });

  test('missing: nothing in any backend', () => {
    const v = classifyCapture(read({ nft: '*nat\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n' }), config, ['198.18.0.2']);
    assert.equal(v.state, 'missing');
    assert.match(v.details[0]!, /no mesh chains or jumps in iptables-legacy, iptables-nft, nftables/);
  });

  test('nothing found but a backend unreadable: unreadable, never missing (so never repaired blind)', () => {
    const blind: AuditRead = { ...read({}), nft: { variant: 'nft', saves: {}, problem: 'iptables-nft-save failed: Permission denied (you must be root)' } };
    const v = classifyCapture(blind, config, ['198.18.0.2']);
    assert.equal(v.state, 'unreadable');
    assert.match(v.details[0]!, /iptables-nft could not be read \(iptables-nft-save failed: Permission denied/);
    // A backend whose tools are simply not installed is not a blind spot.
    const absent: AuditRead = { ...read({}), legacy: { variant: 'legacy', saves: {}, problem: 'no iptables-legacy binaries on PATH' } };
    assert.equal(classifyCapture(absent, config, ['198.18.0.2']).state, 'missing');
  });

  test('partial: a hook jump removed, or the redirect chain emptied', () => {
    const noJump = good.replace(/^-A OUTPUT -j ISTIO_OUTPUT\n/m, '');
    assert.notEqual(noJump, good);
    const v = classifyCapture(read({ nft: noJump }), config, ['198.18.0.2']);
    assert.equal(v.state, 'partial');
    assert.ok(v.details.some((d) => /nat OUTPUT does not jump to ISTIO_OUTPUT/.test(d)), v.details.join('\n'));
    const emptied = good.replace(/^-A ISTIO_REDIRECT .*\n/m, '');
    assert.equal(classifyCapture(read({ nft: emptied }), config, ['198.18.0.2']).state, 'partial');
    const flushed = good.replace(/^-A ISTIO_OUTPUT .*\n/gm, '');
    const v2 = classifyCapture(read({ nft: flushed }), config, ['198.18.0.2']);
    assert.equal(v2.state, 'partial');
    assert.ok(v2.details.includes('nat OUTPUT jumps to ISTIO_OUTPUT, which is empty'), v2.details.join('\n'));
  });

  test('every kind of configuration, live as desired, is ok (no false partial or drift)', () => {
    const variants: [string, string][] = [
      ['-b', ''],
      ['-i', ''],
      ['-i', '10.0.0.0/8'],
      ['-x', '10.96.0.0/12'],
      ['-m', 'TPROXY'],
      ['-o', '9001'],
      ['-q', '80,443'],
      ['-c', 'eth9'],
    ];
    for (const [flag, value] of variants) {
      const args = [...ARGS];
      if (args.includes(flag)) args[args.indexOf(flag) + 1] = value;
      else args.push(flag, value);
      const cfg = parseCaptureConfig(args, {}, FACTS);
      const tproxyRouting = { ipRules: { ipv4: '0:\tfrom all lookup local\n32765:\tfrom all fwmark 0x539 lookup 133\n' }, routeTables: { '133': { ipv4: 'local default dev lo scope host\n' } } };
      const live = { ...read({ nft: saveOf(args) }), ...(flag === '-m' ? tproxyRouting : {}) };
      const v = classifyCapture(live, cfg, ['198.18.0.2']);
      assert.deepEqual([v.state, v.details], ['ok', []], `${flag} ${value}`);
    }
  });

  test('drifted: a complete capture of another configuration, named flag by flag', () => {
    const other = [...ARGS];
    other[other.indexOf('-b') + 1] = '9090';
    const v = classifyCapture(read({ nft: saveOf(other) }), config, ['198.18.0.2']);
    assert.equal(v.state, 'drifted');
    assert.match(v.details[0]!, /-b is 9090, expected \*/);
  });

  test('duplicated-backend: mesh rules in both iptables backends, or iptables and nftables', () => {
    const v = classifyCapture(read({ nft: good, legacy: good }), config, ['198.18.0.2']);
    assert.equal(v.state, 'duplicated-backend');
    assert.match(v.details[0]!, /iptables-legacy \(\d+\) and iptables-nft \(\d+\)/);
    const nftables = 'table inet istio-proxy-nat {\n\tchain istio-output {\n\t\tmeta l4proto tcp return\n\t}\n}\n';
    assert.equal(classifyCapture(read({ nft: good, nftables }), config, ['198.18.0.2']).state, 'duplicated-backend');
  });

  test('foreign-conflict: another tool accepts TCP before the mesh jump, named in the details', () => {
    const defeated = good.replace(/^-A OUTPUT -j ISTIO_OUTPUT$/m, "-A OUTPUT -p tcp -j ACCEPT\n-A OUTPUT -j ISTIO_OUTPUT");
    assert.notEqual(defeated, good);
    const v = classifyCapture(read({ nft: defeated }), config, ['198.18.0.2']);
    assert.equal(v.state, 'foreign-conflict');
    assert.match(v.details[0]!, /outbound TCP to .* the desired capture has it .*15001.* decided by another tool's rule: nat: -A OUTPUT -p tcp -j ACCEPT/);
  });

  test('a foreign rule that does not touch the capture is fine', () => {
    const harmless = good.replace(/^-A OUTPUT -j ISTIO_OUTPUT$/m, "-A OUTPUT -p udp -m udp --dport 9999 -j ACCEPT\n-A OUTPUT -j ISTIO_OUTPUT");
    assert.equal(classifyCapture(read({ nft: harmless }), config, ['198.18.0.2']).state, 'ok');
  });
});

describe('repair policy', () => {
  const missing = { state: 'missing' as const, details: ['no mesh chains'], foreignRules: ['iptables-nft nat: -A OUTPUT -p tcp -j CILIUM_OUTPUT'] };
  test('repairs twice within the window, then reports foreign-conflict with what it found', () => {
    const history = new Map<string, number[]>();
    const t0 = 1_000_000;
    assert.equal(decide(missing, 's1', history, t0).kind, 'repair');
    recordRepair(history, 's1', t0, DEFAULT_POLICY);
    assert.equal(decide(missing, 's1', history, t0 + 1000).kind, 'repair');
    recordRepair(history, 's1', t0 + 1000, DEFAULT_POLICY);
    const third = decide(missing, 's1', history, t0 + 2000);
    assert.equal(third.kind, 'fight');
    assert.equal(third.kind === 'fight' ? third.verdict.state : '', 'foreign-conflict');
    assert.match(third.kind === 'fight' ? third.verdict.details.join('\n') : '', /repaired 2 times in the last 600 s and missing again[\s\S]*found: no mesh chains\nother tool's rule: iptables-nft nat: -A OUTPUT -p tcp -j CILIUM_OUTPUT$/);
    // After the window, repairs resume.
    assert.equal(decide(missing, 's1', history, t0 + 1000 + 600_001).kind, 'repair');
    // Another pod is unaffected; states outside missing/partial/drifted are never repaired.
    assert.equal(decide(missing, 's2', history, t0 + 2000).kind, 'repair');
    for (const state of ['ok', 'duplicated-backend', 'foreign-conflict', 'unreadable'] as const) assert.equal(decide({ state, details: [] }, 's3', history, t0).kind, 'leave');
  });

  test('history survives a round trip through its file, and forgets pods that are gone', () => {
    const history = new Map([['a', [5]], ['b', [6]]]);
    const back = historyFromJson(historyToJson(history));
    assert.deepEqual([...back], [['a', [5]], ['b', [6]]]);
    pruneHistory(back, new Set(['a']), 10, DEFAULT_POLICY);
    assert.deepEqual([...back.keys()], ['a']);
    assert.equal(historyFromJson('not json').size, 0);
  });
});

describe('output', () => {
  const pods: PodAudit[] = [
    { namespace: 'a', pod: 'x', sandboxId: '1', layout: 'cni', state: 'ok', details: [] },
    { namespace: 'a', pod: 'yy', sandboxId: '2', layout: 'init-container', state: 'missing', details: ['no mesh chains'], repair: { before: 'missing', result: 'failed' } },
  ];
  test('plain: one line per pod, details only when not ok', () => {
    assert.equal(renderAuditText(pods), 'a/x   ok\na/yy  missing (was missing; repair failed): no mesh chains\n');
  });
  test('json: the documented shape', () => {
    const value = JSON.parse(auditJson(pods)) as { pods: Record<string, unknown>[] };
    assert.deepEqual(Object.keys(value.pods[0]!), ['namespace', 'pod', 'state', 'details']);
    assert.equal(value.pods[1]!.state, 'missing');
  });
  test('metrics: exactly one state series with value 1 per pod, counts per state, repairs by result', () => {
    const m = new AuditMetrics();
    m.audited([...pods, { namespace: 'q"n', pod: 'p\\1', sandboxId: '3', layout: 'cni', state: 'drifted', details: [], repair: { before: 'drifted', result: 'ok' } }], 2_000_000, 150);
    const text = m.render();
    const series = text.split('\n').filter((l) => l.startsWith('meshcap_pod_capture_state{'));
    assert.deepEqual(series, [
      'meshcap_pod_capture_state{namespace="a",pod="x",state="ok"} 1',
      'meshcap_pod_capture_state{namespace="a",pod="yy",state="missing"} 1',
      'meshcap_pod_capture_state{namespace="q\\"n",pod="p\\\\1",state="drifted"} 1',
    ]);
    assert.match(text, /^meshcap_pods_by_capture_state\{state="ok"\} 1$/m);
    assert.match(text, /^meshcap_pods_by_capture_state\{state="foreign-conflict"\} 0$/m);
    assert.match(text, /^meshcap_capture_repairs_total\{result="ok"\} 1$/m);
    assert.match(text, /^meshcap_capture_repairs_total\{result="failed"\} 1$/m);
    assert.match(text, /^meshcap_capture_repairs_by_found_state_total\{state="missing"\} 1$/m);
    assert.match(text, /^meshcap_capture_repairs_by_found_state_total\{state="drifted"\} 1$/m);
    assert.match(text, /^meshcap_capture_repairs_by_found_state_total\{state="partial"\} 0$/m);
    assert.match(text, /^meshcap_audit_last_run_timestamp_seconds 2000$/m);
    assert.match(text, /^meshcap_audit_duration_seconds 0.15$/m);
    // Every sample belongs to a declared family.
    const declared = new Set(text.split('\n').filter((l) => l.startsWith('# TYPE ')).map((l) => l.split(' ')[2]));
    for (const line of text.split('\n').filter((l) => l && !l.startsWith('#'))) assert.ok(declared.has(line.split(/[{ ]/)[0]), line);
  });
});

describe('advice for audit --json', () => {
  test('every non-ok state has meaning, causes and fix; the JSON the audit prints is read back', async () => {
    const { ADVICE, explainAudit, parseAuditJson } = await import('../../src/audit/advice.js');
    for (const state of ['missing', 'partial', 'drifted', 'duplicated-backend', 'foreign-conflict', 'unreadable'] as const) {
      assert.ok(ADVICE[state].meaning && ADVICE[state].causes && ADVICE[state].fix, state);
    }
    const pods: PodAudit[] = [
      { namespace: 'a', pod: 'x', sandboxId: '1', layout: 'cni', state: 'ok', details: [] },
      { namespace: 'a', pod: 'y', sandboxId: '2', layout: 'cni', state: 'duplicated-backend', details: ['mesh rules in iptables-legacy (18) and iptables-nft (18)'] },
    ];
    const parsed = parseAuditJson(auditJson(pods));
    assert.deepEqual(parsed?.map((p) => p.state), ['ok', 'duplicated-backend']);
    const text = explainAudit(parsed!);
    assert.match(text, /^meshcap audit: 2 pods audited, 1 ok, 1 not$/m);
    assert.match(text, /^a\/y: duplicated-backend\n {2}meaning: .*\n {2}found: {3}mesh rules in iptables-legacy \(18\)[^\n]*\n {2}likely: .*\n {2}fix: {5}keep one/m);
    assert.doesNotMatch(text, /a\/x/);
    assert.equal(parseAuditJson('{"pods":[{"namespace":"a","pod":"b","state":"weird"}]}'), undefined);
    assert.equal(parseAuditJson('iptables-restore: line 2 failed'), undefined);
  });
});
