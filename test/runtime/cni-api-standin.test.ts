/**
 * The API-server fallback, against a STAND-IN API server (node:https on
 * 127.0.0.1 with a CA made at test time, bearer-token check, schema-valid
 * Pod JSON from Istio's own CNI injection anchor). It exercises the wire
 * path (TLS, tokenFile, GET pod, status codes, retries, the UID check), not
 * Kubernetes itself (no RBAC, no admission). The plugin is the single
 * executable, the kubeconfig the one the agent writes.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import YAML from 'yaml';
import { Agent } from '../../src/cni/agent.js';
import { ensurePlugin, cniSkipReason } from '../helpers/cni-node.js';
import { validateObject } from '../helpers/k8s-schema.js';
import { runAsync } from '../helpers/netns.js';
import { ANCHORS_DIR, MESHCAP_BIN, anchorsOrSkip } from '../helpers/paths.js';
import { makeCert } from '../helpers/tls.js';

const skip = cniSkipReason() || (anchorsOrSkip().available ? false : 'skipped: needs ../shared/anchors (Istio CNI injection example)');

interface Behaviour {
  token: string;
  /** Answer this status for the next N requests, then the pod. */
  failFirst: { status: number; count: number };
  uid: string;
  annotations?: Record<string, string>;
}

describe('API-server fallback (stand-in API server, real HTTPS)', { skip }, () => {
  const root = mkdtempSync(join(tmpdir(), 'meshcap-cni-api-'));
  const saDir = join(root, 'sa');
  const runDir = join(root, 'run');
  const netnsName = `mc-cni-api-${process.pid}`;
  let server: Server;
  let port = 0;
  let agent: Agent;
  const seen: { path: string; auth: string | undefined }[] = [];
  const behaviour: Behaviour = { token: 'token-one', failFirst: { status: 200, count: 0 }, uid: 'uid-1' };
  let podJson: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

  before(async () => {
    ensurePlugin();
    mkdirSync(saDir);
    const cert = makeCert(root);
    writeFileSync(join(saDir, 'ca.crt'), cert.cert);
    writeFileSync(join(saDir, 'token'), behaviour.token);
    // Istio's own CNI-mode pod (istio-validation, settings in annotations), as a Pod object.
    const deployment = YAML.parseAllDocuments(readFileSync(join(ANCHORS_DIR, 'istio-inject', 'hello.yaml.cni.injected'), 'utf8'))[0]!.toJS();
    podJson = { apiVersion: 'v1', kind: 'Pod', metadata: { ...deployment.spec.template.metadata, name: 'hello-abc', namespace: 'default', uid: 'uid-1' }, spec: deployment.spec.template.spec };
    const validation = await validateObject(podJson);
    assert.deepEqual(validation.errors, [], 'the stand-in serves schema-valid Pod JSON');
    server = createServer({ cert: cert.cert, key: readFileSync(cert.keyFile) }, (req, res) => {
      seen.push({ path: req.url ?? '', auth: req.headers.authorization });
      const json = (status: number, body: unknown) => res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
      if (req.headers.authorization !== `Bearer ${behaviour.token}`) return json(401, { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 });
      if (behaviour.failFirst.count > 0) {
        behaviour.failFirst.count--;
        return json(behaviour.failFirst.status, { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: `pods "hello-abc" not found`, reason: 'NotFound', code: behaviour.failFirst.status });
      }
      if (req.url === '/api/v1/namespaces/default/pods/hello-abc') {
        return json(200, { ...podJson, metadata: { ...podJson.metadata, uid: behaviour.uid, annotations: behaviour.annotations ?? podJson.metadata.annotations } });
      }
      json(404, { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'not found', reason: 'NotFound', code: 404 });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    port = (server.address() as { port: number }).port;
    // The agent writes the kubeconfig as in a cluster (service env + service-account volume).
    agent = new Agent({ confDir: join(root, 'net.d'), binDir: join(root, 'bin'), source: join(root, 'none'), runDir, serviceAccountDir: saDir, env: { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(port) }, log: () => {} });
    mkdirSync(join(root, 'net.d'));
    mkdirSync(join(root, 'bin'));
    (agent as unknown as { running: boolean }).running = true;
    agent.tick();
    assert.equal(spawnSync('ip', ['netns', 'add', netnsName]).status, 0);
  });
  after(async () => {
    spawnSync('ip', ['netns', 'del', netnsName]);
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    rmSync(root, { recursive: true, force: true });
  });

  const add = (uid = 'uid-1', extra: Record<string, unknown> = {}, name = 'hello-abc') =>
    runAsync(ensurePlugin(), [], {
      env: { PATH: '/usr/sbin:/sbin:/usr/bin', CNI_COMMAND: 'ADD', CNI_CONTAINERID: `c-${uid}`, CNI_NETNS: `/run/netns/${netnsName}`, CNI_IFNAME: 'eth0', CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${name};K8S_POD_UID=${uid}` },
      input: JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'meshcap-cni', kubeconfig: join(runDir, 'kubeconfig'), stateDir: join(root, 'state'), apiTimeoutSeconds: 3, ...extra }),
    });
  const rules = () => spawnSync('ip', ['netns', 'exec', netnsName, 'iptables-save'], { encoding: 'utf8' }).stdout;
  const clean = () => assert.equal(spawnSync('ip', ['netns', 'exec', netnsName, process.execPath, MESHCAP_BIN, 'clean']).status, 0);

  test('the agent writes a kubeconfig with tokenFile, mode 0600, outside the CNI conf dir', () => {
    const path = join(runDir, 'kubeconfig');
    const config = JSON.parse(readFileSync(path, 'utf8'));
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(config.users[0].user.tokenFile, join(runDir, 'token'));
    assert.equal(config.users[0].user.token, undefined, 'no inline token');
    assert.equal(config.clusters[0].cluster.server, `https://127.0.0.1:${port}`);
  });

  test('no annotations from the runtime: the pod is read from the stand-in API server and captured', async () => {
    seen.length = 0;
    const result = await add();
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.equal(seen[0]?.path, '/api/v1/namespaces/default/pods/hello-abc');
    assert.equal(seen[0]?.auth, 'Bearer token-one');
    assert.match(rules(), /-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001/);
    clean();
  });

  test('a rotated token is used by the next ADD with no rewrite of the kubeconfig (stand-in API server)', async () => {
    const path = join(runDir, 'kubeconfig');
    const before = { text: readFileSync(path, 'utf8'), mtime: statSync(path).mtimeMs };
    behaviour.token = 'token-two';
    writeFileSync(join(saDir, 'token'), 'token-two');
    agent.tick();
    seen.length = 0;
    const result = await add();
    assert.equal(result.code, 0, result.stdout);
    assert.equal(seen.at(-1)?.auth, 'Bearer token-two');
    assert.equal(readFileSync(path, 'utf8'), before.text);
    assert.equal(statSync(path).mtimeMs, before.mtime);
    clean();
  });

  test('a late informer (404 twice) is retried and then succeeds (stand-in API server)', async () => {
    behaviour.failFirst = { status: 404, count: 2 };
    seen.length = 0;
    const result = await add();
    assert.equal(result.code, 0, result.stdout);
    assert.equal(seen.length, 3);
    clean();
  });

  test('a re-created pod of the same name (UID differs) is never used: code 11 after bounded retries (stand-in API server)', async () => {
    const started = Date.now();
    const result = await add('uid-other');
    const error = JSON.parse(result.stdout);
    assert.equal(error.code, 11);
    assert.match(error.details, /uid uid-1, but the sandbox is for uid uid-other/);
    assert.ok(Date.now() - started < 10_000, 'bounded');
    assert.doesNotMatch(rules(), /ISTIO/, 'never a silent skip, never a capture from the wrong pod');
  });

  test('an expired token: code 11 naming Unauthorized (stand-in API server)', async () => {
    behaviour.token = 'token-three';
    const result = await add();
    const error = JSON.parse(result.stdout);
    assert.equal(error.code, 11);
    assert.match(error.details, /HTTP 401.*Unauthorized/);
    behaviour.token = 'token-two';
  });

  test('the API server down: code 11 within the bound, never a skip; the agent pod itself is let through by name', async () => {
    const started = Date.now();
    const down = await add('uid-1', { kubeconfig: join(root, 'missing-kubeconfig') });
    assert.equal(JSON.parse(down.stdout).code, 11);
    const refused = await runAsync(ensurePlugin(), [], {
      env: { PATH: '/usr/sbin:/sbin', CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c', CNI_NETNS: `/run/netns/${netnsName}`, CNI_IFNAME: 'eth0', CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=meshcap-system;K8S_POD_NAME=meshcap-cni-node-x7k2p' },
      input: JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'meshcap-cni', kubeconfig: join(root, 'missing-kubeconfig') }),
    });
    assert.equal(refused.code, 0, refused.stdout);
    assert.match(refused.stderr, /agent's own pod/);
    assert.ok(Date.now() - started < 10_000);
  });

  test('with annotations from the runtime, an uninjected pod passes without any API contact (stand-in API server unused)', async () => {
    seen.length = 0;
    const result = await add('uid-1', { kubeconfig: join(root, 'missing-kubeconfig'), runtimeConfig: { 'io.kubernetes.cri.pod-annotations': { 'kubernetes.io/config.source': 'api' } } });
    assert.equal(result.code, 0, result.stdout);
    assert.equal(seen.length, 0);
    assert.doesNotMatch(rules(), /ISTIO/);
  });
});
