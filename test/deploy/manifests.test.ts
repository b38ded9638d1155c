/**
 * deploy/ validated offline: every Kubernetes object against the API schema
 * (kubernetes-models' generated validators + strict field names, see
 * test/helpers/k8s-schema.ts), cert-manager objects against their CRD field
 * lists, and the cross-object wiring and policy the webhook relies on.
 * Also: what `meshcap inject` produces for the anchors is a valid workload.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import YAML from 'yaml';
import { injectManifests } from '../../src/inject/manifest.js';
import { DEFAULT_SETTINGS } from '../../src/inject/settings.js';
import { FIXTURE_CASES, INJECT_CASES, ISTIO_LIKE } from '../golden/inject-cases.js';
import { dirOf } from '../golden/inject-compare.js';
import { validateObject } from '../helpers/k8s-schema.js';
import { REPO_ROOT, anchorsOrSkip } from '../helpers/paths.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const DEPLOY = join(REPO_ROOT, 'deploy');
const objects: { file: string; object: Obj }[] = readdirSync(DEPLOY)
  .filter((f) => f.endsWith('.yaml'))
  .flatMap((file) =>
    YAML.parseAllDocuments(readFileSync(join(DEPLOY, file), 'utf8')).map((doc) => {
      assert.deepEqual(doc.errors, [], `${file}: YAML errors`);
      return { file, object: doc.toJS() as Obj };
    }),
  );
const find = (kind: string, name?: string): Obj => {
  const found = objects.find((o) => o.object.kind === kind && (name === undefined || o.object.metadata?.name === name));
  assert.ok(found, `${kind} ${name ?? ''} in deploy/`);
  return found.object;
};

/** Field lists of cert-manager.io/v1 Issuer and Certificate (from its CRDs), for the fields used here. */
const CERT_MANAGER_FIELDS: Record<string, readonly string[]> = {
  'Issuer.spec': ['selfSigned', 'ca', 'acme', 'vault', 'venafi'],
  'Issuer.spec.ca': ['secretName', 'crlDistributionPoints', 'ocspServers', 'issuingCertificateURLs'],
  'Certificate.spec': ['secretName', 'secretTemplate', 'duration', 'renewBefore', 'renewBeforePercentage', 'commonName', 'dnsNames',
    'ipAddresses', 'uris', 'emailAddresses', 'subject', 'isCA', 'usages', 'privateKey', 'issuerRef', 'keystores',
    'literalSubject', 'encodeUsagesInRequest', 'revisionHistoryLimit', 'additionalOutputFormats', 'nameConstraints', 'otherNames'],
  'Certificate.spec.privateKey': ['algorithm', 'size', 'encoding', 'rotationPolicy'],
  'Certificate.spec.issuerRef': ['name', 'kind', 'group'],
};

/** k8s.cni.cncf.io/v1 NetworkAttachmentDefinition (the Network Plumbing WG CRD Multus installs): spec holds one string, a CNI config. */
function checkNetworkAttachment(object: Obj): void {
  assert.equal(object.kind, 'NetworkAttachmentDefinition');
  assert.deepEqual(Object.keys(object).sort(), ['apiVersion', 'kind', 'metadata', 'spec']);
  assert.match(object.metadata.name, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/);
  assert.match(object.metadata.namespace, /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);
  for (const key of Object.keys(object.metadata)) assert.ok(['name', 'namespace', 'labels', 'annotations'].includes(key), `metadata.${key}`);
  assert.deepEqual(Object.keys(object.spec ?? {}).filter((k) => k !== 'config'), [], 'spec has only config');
  if (object.spec?.config !== undefined) {
    assert.equal(typeof object.spec.config, 'string');
    const config = JSON.parse(object.spec.config) as Obj;
    assert.ok(config.cniVersion && (config.type || Array.isArray(config.plugins)), 'a CNI network config');
  }
}

describe('deploy/ manifests', () => {
  for (const { file, object } of objects) {
    test(`${file}: ${object.kind} ${object.metadata?.name} is valid`, async () => {
      if (object.apiVersion === 'k8s.cni.cncf.io/v1') {
        checkNetworkAttachment(object);
        return;
      }
      if (object.apiVersion === 'cert-manager.io/v1') {
        for (const [where, allowed] of Object.entries(CERT_MANAGER_FIELDS)) {
          const [kind, ...path] = where.split('.');
          if (kind !== object.kind) continue;
          const node = path.reduce((n: Obj | undefined, key) => n?.[key], object);
          for (const key of Object.keys(node ?? {})) assert.ok(allowed.includes(key), `${where}.${key} is not a cert-manager field`);
        }
        if (object.kind === 'Certificate') {
          // A serving certificate names the Service; the CA names itself.
          assert.ok(object.spec.secretName && object.spec.issuerRef?.name && (object.spec.isCA === true ? object.spec.commonName : object.spec.dnsNames?.length));
        }
        return;
      }
      const { errors } = await validateObject(object);
      assert.deepEqual(errors, []);
    });
  }

  test('Deployment: 2 replicas, PDB and Service select its pods, probes and cert mount are wired', () => {
    const deployment = find('Deployment', 'meshcap-webhook');
    const podLabels = deployment.spec.template.metadata.labels;
    const matches = (selector: Record<string, string>) => Object.entries(selector).every(([k, v]) => podLabels[k] === v);
    assert.equal(deployment.spec.replicas, 2);
    assert.ok(matches(deployment.spec.selector.matchLabels));
    const pdb = find('PodDisruptionBudget', 'meshcap-webhook');
    assert.ok(matches(pdb.spec.selector.matchLabels));
    assert.ok(pdb.spec.minAvailable === 1 || pdb.spec.maxUnavailable === 1);
    const service = find('Service', 'meshcap-webhook');
    assert.ok(matches(service.spec.selector));
    const container = deployment.spec.template.spec.containers[0];
    assert.ok(container.ports.some((p: Obj) => p.name === service.spec.ports[0].targetPort));
    const mount = container.volumeMounts.find((m: Obj) => m.name === 'tls').mountPath;
    assert.ok(container.args.includes(`--tls-cert=${mount}/tls.crt`) && container.args.includes(`--tls-key=${mount}/tls.key`));
    const volume = deployment.spec.template.spec.volumes.find((v: Obj) => v.name === 'tls');
    assert.equal(volume.secret.secretName, find('Certificate', 'meshcap-webhook').spec.secretName);
    assert.equal(container.readinessProbe.httpGet.path, '/readyz');
    assert.equal(container.securityContext.readOnlyRootFilesystem, true);
    assert.equal(deployment.spec.template.spec.automountServiceAccountToken, false);
  });

  test('RBAC is least privilege: the service accounts have no roles and no token', () => {
    // The CNI agent's one read-only role is checked in cni-manifest.test.ts.
    assert.equal(objects.filter((o) => o.file !== 'cni.yaml' && /Role(Binding)?$/.test(o.object.kind)).length, 0);
    for (const sa of objects.filter((o) => o.object.kind === 'ServiceAccount')) assert.equal(sa.object.automountServiceAccountToken, false);
  });

  test('MutatingWebhookConfiguration: timeout, failure policy, selectors, service', () => {
    const mwc = find('MutatingWebhookConfiguration');
    const deployment = find('Deployment', 'meshcap-webhook');
    const namespace = deployment.metadata.namespace;
    for (const hook of mwc.webhooks) {
      assert.ok(Number.isInteger(hook.timeoutSeconds) && hook.timeoutSeconds >= 1 && hook.timeoutSeconds <= 10);
      assert.ok(['Fail', 'Ignore'].includes(hook.failurePolicy));
      assert.deepEqual(hook.admissionReviewVersions, ['v1']);
      assert.equal(hook.sideEffects, 'None');
      assert.deepEqual(hook.clientConfig.service, { name: 'meshcap-webhook', namespace, path: '/inject', port: 443 });
      assert.deepEqual(hook.rules.map((r: Obj) => [r.operations, r.resources]), [[['CREATE'], ['pods']]]);
      const ns = hook.namespaceSelector.matchExpressions;
      assert.ok(ns.some((e: Obj) => e.key === 'istio-injection' && e.operator === 'In' && e.values.includes('enabled')));
      assert.ok(ns.some((e: Obj) => e.key === 'kubernetes.io/metadata.name' && e.operator === 'NotIn' && e.values.includes(namespace) && e.values.includes('kube-system')));
      const obj = hook.objectSelector.matchExpressions;
      assert.ok(obj.some((e: Obj) => e.key === 'sidecar.istio.io/inject' && e.operator === 'NotIn' && e.values.includes('false')));
    }
    const mwcText = readFileSync(join(DEPLOY, 'mutatingwebhook.yaml'), 'utf8');
    assert.match(mwcText, /# Fail \(closed\), because/, 'failurePolicy carries its reason');
    const certificate = find('Certificate', 'meshcap-webhook');
    // The CA injector copies the serving certificate's ca.crt: a CA Issuer keeps it stable across renewals.
    const issuer = find('Issuer', certificate.spec.issuerRef.name);
    const ca = find('Certificate', issuer.spec.ca.secretName);
    assert.equal(ca.spec.isCA, true);
    assert.equal(ca.spec.secretName, issuer.spec.ca.secretName);
    assert.equal(mwc.metadata.annotations['cert-manager.io/inject-ca-from'], `${certificate.metadata.namespace}/${certificate.metadata.name}`);
    assert.ok(certificate.spec.dnsNames.includes(`meshcap-webhook.${namespace}.svc`));
  });

  test('node-prep: loads modules in an init container, then sleeps with tiny resources', () => {
    const ds = find('DaemonSet', 'meshcap-node-prep');
    const [init] = ds.spec.template.spec.initContainers;
    assert.deepEqual(init.securityContext.capabilities.add, ['SYS_MODULE']);
    assert.notEqual(init.securityContext.privileged, true);
    assert.ok(init.volumeMounts.every((m: Obj) => m.readOnly === true));
    const [sleeper] = ds.spec.template.spec.containers;
    assert.deepEqual(sleeper.securityContext.capabilities.drop, ['ALL']);
    assert.ok(sleeper.resources.limits.memory === '8Mi' && sleeper.resources.requests.cpu === '1m');
  });

  test('gen-certs.sh: a CA-signed serving certificate; re-runs keep the CA; a CA rotation trusts old and new', () => {
    const out = mkdtempSync(join(tmpdir(), 'meshcap-certs-'));
    const run = (env: Record<string, string> = {}) =>
      execFileSync('bash', [join(DEPLOY, 'gen-certs.sh'), '--out', out], { stdio: 'pipe', env: { ...process.env, ...env } });
    const read = (name: string) => readFileSync(join(out, name), 'utf8');
    const certificates = (name: string) => read(name).match(/BEGIN CERTIFICATE/g)?.length ?? 0;
    run();
    execFileSync('openssl', ['verify', '-CAfile', join(out, 'ca.crt'), join(out, 'tls.crt')], { stdio: 'pipe' });
    const san = execFileSync('openssl', ['x509', '-in', join(out, 'tls.crt'), '-noout', '-ext', 'subjectAltName'], { encoding: 'utf8' });
    assert.match(san, /DNS:meshcap-webhook\.meshcap-system\.svc\b/);
    const [ca1, leaf1] = [read('ca.crt'), read('tls.crt')];
    assert.equal(certificates('ca-bundle.crt'), 1);

    // Renewal: a new serving certificate from the same CA, so caBundle does not change.
    run();
    assert.equal(read('ca.crt'), ca1);
    assert.notEqual(read('tls.crt'), leaf1);
    assert.equal(certificates('ca-bundle.crt'), 1);

    // CA rotation: the bundle trusts the new CA and the old one (pods may still serve the old certificate).
    run({ NEW_CA: '1' });
    assert.notEqual(read('ca.crt'), ca1);
    assert.equal(certificates('ca-bundle.crt'), 2);
    assert.ok(read('ca-bundle.crt').includes(ca1.trim()));
    execFileSync('openssl', ['verify', '-CAfile', join(out, 'ca-bundle.crt'), join(out, 'tls.crt')], { stdio: 'pipe' });
    // The next plain run drops the old CA.
    run();
    assert.equal(certificates('ca-bundle.crt'), 1);
  });

  test('Dockerfile: built on node, run on Debian slim with iptables, nftables, iproute2', () => {
    const text = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8');
    assert.deepEqual(text.match(/^FROM .*$/gm), ['FROM node:20-bookworm-slim AS build', 'FROM debian:bookworm-slim']);
    for (const pkg of ['iptables', 'nftables', 'iproute2']) assert.match(text, new RegExp(`apt-get install[^\\n]*\\b${pkg}\\b`));
    assert.match(text, /ENTRYPOINT \["meshcap"\]/);
  });
});

describe('injected workloads are valid Kubernetes objects', { skip: anchorsOrSkip().available ? false : 'anchors missing' }, () => {
  for (const c of [...INJECT_CASES, ...FIXTURE_CASES].filter((x) => x.golden && !x.skipped)) {
    test(`#${c.n} ${c.input}`, async () => {
      for (const settings of [{ ...ISTIO_LIKE, ...c.settings }, { ...DEFAULT_SETTINGS, ...c.settings }]) {
        const out = injectManifests(readFileSync(join(dirOf(c), c.input), 'utf8'), settings).text;
        for (const doc of YAML.parseAllDocuments(out)) {
          const object = doc.toJS() as Obj | null;
          if (!object) continue;
          const items = object.kind === 'List' ? object.items : [object];
          for (const item of items) {
            // No schema ships for OpenShift's DeploymentConfig: its pod template, which injection changes, is checked as a v1 PodTemplate.
            const checked = item.kind === 'DeploymentConfig'
              ? { apiVersion: 'v1', kind: 'PodTemplate', metadata: { name: item.metadata?.name }, template: (item.spec as Obj).template }
              : item;
            assert.deepEqual((await validateObject(checked)).errors, [], `${item.kind} ${item.metadata?.name}`);
          }
        }
      }
    });
  }
});
