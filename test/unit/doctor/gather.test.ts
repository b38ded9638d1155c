import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { containersToLog, gatherPod } from '../../../src/doctor/gather.js';
import { execRunner, NOT_FOUND_EXIT } from '../../../src/doctor/runner.js';
import { fakeKubectl, ok, POD_JSON } from './fake-kubectl.js';

describe('doctor gathering', () => {
  it('asks kubectl for the pod, its events and current and previous logs of init and proxy containers', async () => {
    const { runner, calls } = fakeKubectl(
      {
        'get pod web-1 -n shop -o json': ok(`${POD_JSON}\n`),
        'get events -n shop --field-selector involvedObject.name=web-1': ok('LAST SEEN   TYPE      REASON    OBJECT      MESSAGE\n5s   Warning   BackOff   pod/web-1   Back-off restarting failed container istio-init in pod web-1_shop\n'),
        'logs web-1 -n shop -c istio-init': ok('2026-01-01T00:00:00Z\terror\tiptables-restore: line 2 failed: Chain already exists.\n'),
        'logs web-1 -n shop -c istio-init --previous': ok('2026-01-01T00:00:00Z\terror\tiptables-restore: line 2 failed: Chain already exists.\n'),
      },
      { code: 1, stdout: '', stderr: 'Error from server (BadRequest): previous terminated container "x" in pod "web-1" not found' },
    );
    const result = await gatherPod('web-1', 'shop', runner);
    assert.deepEqual(calls, [
      ['kubectl', 'get', 'pod', 'web-1', '-n', 'shop', '-o', 'json'],
      ['kubectl', 'get', 'events', '-n', 'shop', '--field-selector', 'involvedObject.name=web-1'],
      ['kubectl', 'logs', 'web-1', '-n', 'shop', '-c', 'istio-init'],
      ['kubectl', 'logs', 'web-1', '-n', 'shop', '-c', 'istio-init', '--previous'],
      ['kubectl', 'logs', 'web-1', '-n', 'shop', '-c', 'migrate-db'],
      ['kubectl', 'logs', 'web-1', '-n', 'shop', '-c', 'migrate-db', '--previous'],
      ['kubectl', 'logs', 'web-1', '-n', 'shop', '-c', 'istio-proxy', '--tail=2000'],
      ['kubectl', 'logs', 'web-1', '-n', 'shop', '-c', 'istio-proxy', '--previous', '--tail=2000'],
    ]);
    assert.equal(result.kubectlMissing, false);
    assert.equal(result.gathered, 4);
    assert.match(result.text, /^=== kubectl get pod web-1 -n shop -o json ===$/m);
    assert.match(result.text, /^=== kubectl logs web-1 -n shop -c istio-init --previous ===$/m);
    assert.match(result.text, /^\(no output: Error from server \(BadRequest\): previous terminated container/m);
    assert.deepEqual(result.notes, []);
  });

  it('leaves out -n when no namespace is given', async () => {
    const { runner, calls } = fakeKubectl({});
    await gatherPod('web-1', undefined, runner);
    assert.deepEqual(calls[0], ['kubectl', 'get', 'pod', 'web-1', '-o', 'json']);
    assert.deepEqual(calls[1], ['kubectl', 'get', 'events', '--field-selector', 'involvedObject.name=web-1']);
  });

  it('reports a missing kubectl plainly and stops', async () => {
    const { runner, calls } = fakeKubectl({}, { code: 127, stdout: '', stderr: 'kubectl: executable file not found in PATH' });
    const result = await gatherPod('web-1', 'shop', runner);
    assert.equal(result.kubectlMissing, true);
    assert.equal(result.gathered, 0);
    assert.equal(calls.length, 1);
    assert.equal(result.text, '');
  });

  it('notes a pod that cannot be read and still tries the events', async () => {
    const { runner, calls } = fakeKubectl(
      { 'get events -n shop --field-selector involvedObject.name=web-9': ok('No resources found in shop namespace.\n') },
      { code: 1, stdout: '', stderr: 'Error from server (NotFound): pods "web-9" not found' },
    );
    const result = await gatherPod('web-9', 'shop', runner);
    assert.equal(calls.length, 2);
    assert.equal(result.gathered, 1);
    assert.equal(result.notes.length, 1);
    assert.match(result.notes[0] ?? '', /could not read pod web-9 in namespace shop/);
  });

  it('lists init containers, native-sidecar proxies and mesh proxies, each once', () => {
    const json = JSON.stringify({
      spec: {
        initContainers: [{ name: 'istio-validation' }, { name: 'istio-proxy', restartPolicy: 'Always' }],
        containers: [{ name: 'app' }, { name: 'istio-proxy' }],
      },
    });
    assert.deepEqual(containersToLog(json), [
      { name: 'istio-validation', proxy: false },
      { name: 'istio-proxy', proxy: true },
    ]);
    assert.deepEqual(containersToLog('not json'), []);
  });

  it('runs real programs without a shell and reports a missing one as exit 127', async () => {
    const missing = await execRunner('meshcap-no-such-binary-for-tests', ['--version']);
    assert.equal(missing.code, NOT_FOUND_EXIT);
    assert.match(missing.stderr, /not found/);
    const failing = await execRunner(process.execPath, ['-e', "process.stdout.write('out'); process.stderr.write('err'); process.exit(3)"]);
    assert.deepEqual(failing, { code: 3, stdout: 'out', stderr: 'err' });
    const literal = await execRunner(process.execPath, ['-e', 'process.stdout.write(process.argv[1])', '$(echo injected) ; true']);
    assert.equal(literal.stdout, '$(echo injected) ; true');
  });
});
