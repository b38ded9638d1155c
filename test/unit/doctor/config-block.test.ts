import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { diagnose } from '../../../src/doctor/classify.js';
import { formatHuman, toJson } from '../../../src/doctor/format.js';

/** The printed istio-iptables / proxy-init configuration, read with meshcap's own parser. */

function block(vars: Record<string, string>, header = 'Variables:\n----------'): string {
  return `${header}\n${Object.entries(vars).map(([k, v]) => `${k}=${v}`).join('\n')}\n\n`;
}

const BASE = {
  PROXY_PORT: '15001',
  PROXY_INBOUND_CAPTURE_PORT: '15006',
  PROXY_UID: '1337',
  INBOUND_INTERCEPTION_MODE: 'REDIRECT',
  INBOUND_PORTS_INCLUDE: '*',
  INBOUND_PORTS_EXCLUDE: '15090,15021,15020',
  OUTBOUND_IP_RANGES_INCLUDE: '*',
  OUTBOUND_IP_RANGES_EXCLUDE: '',
};

describe('doctor reads the printed capture configuration', () => {
  it('says nothing about a healthy default block', () => {
    const d = diagnose(block(BASE));
    assert.equal(d.readings.length, 0);
    assert.equal(d.causes[0]?.id, 'unknown');
  });

  it('explains that an empty -b turns inbound capture off, quoting the line', () => {
    const text = block({ ...BASE, INBOUND_PORTS_INCLUDE: '' });
    const d = diagnose(text);
    const r = d.readings.find((x) => /Inbound capture is off/.test(x.text));
    assert.ok(r, JSON.stringify(d.readings));
    assert.equal(r.evidence.text, 'INBOUND_PORTS_INCLUDE=');
    assert.equal(text.split('\n')[r.evidence.line - 1], 'INBOUND_PORTS_INCLUDE=');
  });

  it('reports a trailing comma as an empty item and invalid-config', () => {
    const d = diagnose(block({ ...BASE, INBOUND_PORTS_EXCLUDE: '15090,15021,' }, '2026-01-01T00:00:00.000000Z\tinfo\tIstio iptables variables:'));
    assert.ok(d.readings.some((r) => /empty item/.test(r.text)));
    assert.equal(d.causes[0]?.id, 'invalid-config');
  });

  it('recognises a shifted argument (a value that is the next flag) through meshcap\'s rejection', () => {
    const d = diagnose(block({ ...BASE, INBOUND_PORTS_EXCLUDE: '-o' }));
    const r = d.readings.find((x) => /next flag/.test(x.text));
    assert.ok(r, JSON.stringify(d.readings));
    assert.match(r.text, /starts with '-'/);
    assert.equal(d.causes[0]?.id, 'invalid-config');
    assert.ok((d.causes[0]?.confidence ?? 0) >= 0.8);
  });

  it('passes values through the config parser: an out-of-range port and a bad CIDR are rejected with its message', () => {
    const d = diagnose(block({ ...BASE, PROXY_PORT: '150010', OUTBOUND_IP_RANGES_EXCLUDE: '10.0.0.0/33' }));
    const texts = d.readings.map((r) => r.text).join('\n');
    assert.match(texts, /PROXY_PORT: invalid --envoy-port/);
    assert.match(texts, /OUTBOUND_IP_RANGES_EXCLUDE: invalid --istio-service-exclude-cidr/);
  });

  it('reads Istio\'s bug-compatibility warning as a silently dropped CIDR', () => {
    const d = diagnose(`${block(BASE)}Ignoring error for bug compatibility with istio-iptables.sh: invalid CIDR address: 10.20.0.1\n`);
    assert.equal(d.causes[0]?.id, 'invalid-config');
    assert.ok(d.causes[0]?.evidence.some((e) => /bug compatibility/.test(e.text)));
    assert.ok(d.readings.some((r) => /dropped "10\.20\.0\.1".{0,80}10\.20\.0\.1\/32/.test(r.text)), JSON.stringify(d.readings));
  });

  const describeArgs = (args: readonly string[]): string =>
    ['Init Containers:', '  istio-init:', '    Image:         docker.io/istio/proxyv2:1.22.3', '    Args:', ...args.map((a) => (a === '' ? '' : `      ${a}`)), '    State:          Terminated', ''].join('\n');

  it('parses the istio-init Args of kubectl describe, keeping empty arguments that print as empty lines', () => {
    const healthy = describeArgs(['istio-iptables', '-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '', '-b', '*', '-d', '15090,15021,15020']);
    const d = diagnose(healthy);
    assert.deepEqual(d.readings, []);
    assert.equal(d.causes[0]?.id, 'unknown');
  });

  it('names shifted describe Args: a flag taken as the value of the flag before it', () => {
    // The empty value after -x was lost (a template that dropped it), so -x swallows -b.
    const text = describeArgs(['istio-iptables', '-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '-b', '*', '-d', '15090,15021,15020']);
    const d = diagnose(text);
    const r = d.readings.find((x) => /shifted/.test(x.text));
    assert.ok(r, JSON.stringify(d.readings));
    assert.equal(r.evidence.text, '      -b');
    assert.equal(d.causes[0]?.id, 'invalid-config');
  });

  it('says that -b "" in the describe Args turns inbound capture off', () => {
    const d = diagnose(describeArgs(['istio-iptables', '-p', '15001', '-u', '1337', '-b', '', '-d', '15090']));
    assert.ok(d.readings.some((r) => /inbound capture is off/.test(r.text)), JSON.stringify(d.readings));
  });

  it('shows readings in the human and JSON output', () => {
    const d = diagnose(block({ ...BASE, INBOUND_PORTS_INCLUDE: '' }));
    assert.match(formatHuman(d), /The capture configuration in the input, read with meshcap's parser:\n {2}L\d{1,3}: Inbound capture is off/);
    assert.equal(toJson(d).readings?.[0]?.evidence.text, 'INBOUND_PORTS_INCLUDE=');
  });

  it('checks proxy-init\'s printed ports the same way', () => {
    const d = diagnose('2026/02/25 08:33:56 Will ignore port [4190 99999] on chain PROXY_INIT_REDIRECT\n');
    assert.ok(d.readings.some((r) => /proxy-init's inbound ports to ignore/.test(r.text)));
    assert.equal(d.causes[0]?.id, 'invalid-config');
  });
});

describe('doctor on Job and init-container states', () => {
  it('sees a Job that never completes in kubectl get jobs / get pods / describe job shapes', () => {
    for (const text of [
      'NAME   DESIRED   SUCCESSFUL   AGE\npi     1         0            16m\nNAME       READY   STATUS    RESTARTS   AGE\npi-6tq7q   1/2     Running   0          16m\nLabels: job-name=pi\n',
      'Name:           pi\nPods Statuses:  1 Active (0 Ready) / 0 Succeeded / 0 Failed\nLabels: job-name=pi\n',
      'NAME     STATUS    COMPLETIONS   DURATION   AGE\nmigrate   Running   0/1           41m        41m\nNAME                 READY   STATUS    RESTARTS   AGE\nmigrate-x7k2p        1/2     Running   0          41m\n',
      'Error: UPGRADE FAILED: failed post-upgrade: timed out waiting for the condition\nistio-proxy still running in pod myapp-post-upgrade-job-9xk2t\n',
    ]) {
      assert.equal(diagnose(text).causes[0]?.id, 'sidecar-blocks-job-completion', text);
    }
  });
});
