/** deploy/cni.yaml offline (schema validity is checked with every manifest in manifests.test.ts): wiring and least privilege. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import YAML from 'yaml';
import { DEFAULT_PLUGIN_SETTINGS } from '../../src/cni/request.js';
import { AGENT_ANNOTATION } from '../../src/cni/decide.js';
import { STANDALONE_NETWORK, standaloneConfig } from '../../src/cni/conflist.js';
import { injectManifests } from '../../src/inject/manifest.js';
import { parseAttachmentRef } from '../../src/inject/multus.js';
import { DEFAULT_SETTINGS } from '../../src/inject/settings.js';
import { podManifest } from '../helpers/manifests.js';
import { REPO_ROOT } from '../helpers/paths.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const objects: Obj[] = YAML.parseAllDocuments(readFileSync(join(REPO_ROOT, 'deploy', 'cni.yaml'), 'utf8')).map((d) => d.toJS());
const find = (kind: string) => objects.find((o) => o.kind === kind)!;

test('cni.yaml: the only permission is get on pods, bound to the agent\'s service account', () => {
  const role = find('ClusterRole');
  assert.deepEqual(role.rules, [{ apiGroups: [''], resources: ['pods'], verbs: ['get'] }]);
  const binding = find('ClusterRoleBinding');
  const sa = find('ServiceAccount');
  assert.equal(binding.roleRef.name, role.metadata.name);
  assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: sa.metadata.namespace }]);
  assert.equal(find('DaemonSet').spec.template.spec.serviceAccountName, sa.metadata.name);
});

test('cni.yaml: the agent runs `meshcap cni agent` on the host CNI dirs, its readiness is /readyz, it is let through by meshcap-cni', () => {
  const ds = find('DaemonSet');
  const spec = ds.spec.template.spec;
  const [container] = spec.containers;
  assert.deepEqual(container.args.slice(0, 2), ['cni', 'agent']);
  const flag = (name: string) => container.args.find((a: string) => a.startsWith(`--${name}=`))?.split('=')[1];
  const mountOf = (path: string) => container.volumeMounts.find((m: Obj) => m.mountPath === path);
  const hostOf = (mount: Obj) => spec.volumes.find((v: Obj) => v.name === mount.name).hostPath.path;
  assert.equal(hostOf(mountOf(flag('cni-conf-dir')!)), '/etc/cni/net.d');
  assert.equal(hostOf(mountOf(flag('cni-bin-dir')!)), '/opt/cni/bin');
  // The kubeconfig the plugin reads on the host is where the agent writes it (same path inside and out).
  const runDir = container.env.find((e: Obj) => e.name === 'MESHCAP_CNI_RUN_DIR').value;
  assert.equal(hostOf(mountOf(runDir)), runDir);
  assert.equal(`${runDir}/kubeconfig`, DEFAULT_PLUGIN_SETTINGS.kubeconfig);
  assert.equal(container.readinessProbe.httpGet.path, '/readyz');
  assert.equal(String(container.readinessProbe.httpGet.port), flag('metrics-addr')!.split(':')[1]);
  assert.equal(ds.spec.template.metadata.annotations[AGENT_ANNOTATION], 'true');
  assert.ok(ds.metadata.name.startsWith(DEFAULT_PLUGIN_SETTINGS.agentPodPrefix.replace(/-$/, '')));
  assert.equal(ds.metadata.namespace, DEFAULT_PLUGIN_SETTINGS.agentNamespace);
  // Only the node audit's needs: setns into pods' namespaces, and their netfilter rules.
  assert.deepEqual(container.securityContext.capabilities, { add: ['NET_ADMIN', 'NET_RAW', 'SYS_ADMIN'], drop: ['ALL'] });
  assert.notEqual(container.securityContext.privileged, true);
  assert.equal(hostOf(mountOf(flag('cri-socket')!)), '/run/containerd/containerd.sock');
  assert.equal(mountOf('/run/netns').mountPropagation, 'HostToContainer');
  assert.equal(hostOf(mountOf('/run/netns')), '/run/netns');
  assert.equal(hostOf(mountOf('/run/xtables.lock')), '/run/xtables.lock');
  assert.equal(flag('repair'), 'in-place');
  assert.equal(container.securityContext.allowPrivilegeEscalation, false);
  assert.equal(spec.hostNetwork, true);
  assert.equal(spec.priorityClassName, 'system-node-critical');
});

test('cni-multus.yaml: the NetworkAttachmentDefinition carries the standalone config and is what the injector flag names', () => {
  const [nad] = YAML.parseAllDocuments(readFileSync(join(REPO_ROOT, 'deploy', 'cni-multus.yaml'), 'utf8')).map((d) => d.toJS() as Obj);
  assert.equal(nad!.apiVersion, 'k8s.cni.cncf.io/v1');
  assert.deepEqual(JSON.parse(nad!.spec.config), JSON.parse(standaloneConfig()));
  assert.equal(nad!.metadata.name, STANDALONE_NETWORK);
  // The reference its header and the README tell the injector to use.
  const ref = `${nad!.metadata.namespace}/${nad!.metadata.name}`;
  assert.match(readFileSync(join(REPO_ROOT, 'deploy', 'cni-multus.yaml'), 'utf8'), new RegExp(`--cni-network-attachment ${ref}`));
  assert.match(readFileSync(join(REPO_ROOT, 'README.md'), 'utf8'), new RegExp(`--cni-network-attachment ${ref}`));
  const injected = injectManifests(podManifest(), { ...DEFAULT_SETTINGS, cni: true, cniNetworkAttachment: parseAttachmentRef(ref) }).text;
  assert.equal((YAML.parse(injected) as Obj).metadata.annotations['k8s.v1.cni.cncf.io/networks'], ref);
});
