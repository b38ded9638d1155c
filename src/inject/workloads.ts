/**
 * Where the pod template lives in each kind `meshcap inject` handles. CronJob
 * pods are injected at spec.jobTemplate.spec.template, metadata included
 * (Istio writes the labels and annotations to the Job template's metadata
 * instead, where they never reach the pod). Pure.
 */
import { type JsonObject, asArray, asObject, isObject, stringMap } from './json.js';
import type { PodTarget, Workload } from './target.js';

const TEMPLATE_PATHS: Readonly<Record<string, readonly string[]>> = {
  'v1/Pod': [],
  'v1/ReplicationController': ['spec', 'template'],
  'apps/v1/Deployment': ['spec', 'template'],
  'apps/v1/StatefulSet': ['spec', 'template'],
  'apps/v1/DaemonSet': ['spec', 'template'],
  'apps/v1/ReplicaSet': ['spec', 'template'],
  'batch/v1/Job': ['spec', 'template'],
  'batch/v1/CronJob': ['spec', 'jobTemplate', 'spec', 'template'],
  // OpenShift's DeploymentConfig: a Deployment with triggers; its pod template is where a Deployment's is.
  'apps.openshift.io/v1/DeploymentConfig': ['spec', 'template'],
};

/** The kinds injected, as `apiVersion/kind`, for help and warnings. */
export const HANDLED_KINDS: readonly string[] = Object.keys(TEMPLATE_PATHS);

export interface Located {
  /** Path from the object to its pod (template): prefix of every patch op. */
  readonly path: readonly string[];
  readonly target: PodTarget;
}

/** The pod template of a handled kind, or undefined for every other object (passed through). */
export function locatePod(object: unknown): Located | undefined {
  if (!isObject(object)) return undefined;
  const key = `${String(object.apiVersion)}/${String(object.kind)}`;
  const path = TEMPLATE_PATHS[key];
  if (!path) return undefined;
  let node: unknown = object;
  for (const token of path) {
    node = asObject(node)?.[token];
  }
  const pod = asObject(node);
  const spec = asObject(pod?.spec);
  if (!pod || !spec) return undefined;
  const meta = asObject(object.metadata) ?? {};
  const name = typeof meta.name === 'string' ? meta.name : typeof meta.generateName === 'string' ? meta.generateName : '';
  const namespace = typeof meta.namespace === 'string' && meta.namespace !== '' ? meta.namespace : 'default';
  const kind = String(object.kind);
  // A Pod stands for its controller, exactly as in the webhook: same canonical name, workload name and owner.
  const workload = kind === 'Pod' && path.length === 0 ? podWorkload(meta, namespace) : { apiVersion: String(object.apiVersion), kind, name, namespace };
  return {
    path,
    target: {
      metadata: asObject(pod.metadata) ?? {},
      hasMetadata: isObject(pod.metadata),
      spec,
      workload,
      subject: `${kind} "${namespace}/${name}"`,
    },
  };
}

/**
 * The workload a pod belongs to, from its controller ownerReference, with
 * Istio's heuristics (GetDeployMetaFromPod) for the owners' owners: a
 * ReplicaSet named <deployment>-<pod-template-hash> stands for its Deployment
 * (<rollout>-<rollouts-pod-template-hash> for an Argo Rollout), a
 * ReplicationController of a pod labelled deploymentconfig for that OpenShift
 * DeploymentConfig, a Job named <cronjob>-<scheduled time> for its CronJob.
 * Istio looks at owners only when the pod has generateName; meshcap whenever a
 * controller is named, so a StatefulSet's pod web-0 belongs to StatefulSet web.
 * Without a controller the pod is its own workload.
 */
export function podWorkload(metadata: JsonObject, namespace: string): Workload {
  const labels = stringMap(metadata.labels);
  const podName = typeof metadata.name === 'string' && metadata.name !== '' ? metadata.name : String(metadata.generateName ?? '').replace(/-$/, '');
  const owner = (asArray(metadata.ownerReferences) ?? []).filter(isObject).find((ref) => ref.controller === true);
  if (!owner || typeof owner.kind !== 'string' || typeof owner.name !== 'string' || typeof owner.apiVersion !== 'string' || owner.name === '') {
    return { apiVersion: 'v1', kind: 'Pod', name: podName, namespace };
  }
  const { kind, name, apiVersion } = owner;
  const trimmed = (hash: string | undefined) => (hash && name.endsWith(`-${hash}`) ? name.slice(0, -hash.length - 1) : undefined);
  if (kind === 'ReplicaSet') {
    const deployment = trimmed(labels['pod-template-hash']);
    if (deployment) return { apiVersion: 'apps/v1', kind: 'Deployment', name: deployment, namespace };
    const rollout = trimmed(labels['rollouts-pod-template-hash']);
    if (rollout) return { apiVersion: 'argoproj.io/v1alpha1', kind: 'Rollout', name: rollout, namespace };
  }
  if (kind === 'ReplicationController' && labels.deploymentconfig) {
    return { apiVersion: 'apps.openshift.io/v1', kind: 'DeploymentConfig', name: labels.deploymentconfig, namespace };
  }
  // The CronJob controller names its Jobs <cronjob>-<scheduled time in minutes>.
  const cron = kind === 'Job' ? /^(.+)-[0-9]{8,10}$/.exec(name) : null;
  if (cron) return { apiVersion: 'batch/v1', kind: 'CronJob', name: cron[1]!, namespace };
  return { apiVersion, kind, name, namespace };
}

export function isList(object: unknown): object is JsonObject & { items: unknown[] } {
  return isObject(object) && object.apiVersion === 'v1' && object.kind === 'List' && Array.isArray(object.items);
}

/**
 * A document that has pods but is not a kind meshcap injects (an Argo Rollout,
 * a Knative Service, an old extensions/v1beta1 Deployment): the sentence for
 * the warning, naming it, or undefined for everything else (Services,
 * ConfigMaps, ... pass through unremarked).
 */
export function unhandledWorkload(object: unknown): string | undefined {
  if (!isObject(object)) return undefined;
  const spec = asObject(object.spec);
  const template = asObject(spec?.template) ?? asObject(asObject(asObject(spec?.jobTemplate)?.spec)?.template);
  const pod = object.kind === 'Pod' ? object : template;
  if (!Array.isArray(asObject(pod?.spec)?.containers)) return undefined;
  const meta = asObject(object.metadata) ?? {};
  const namespace = typeof meta.namespace === 'string' && meta.namespace !== '' ? meta.namespace : 'default';
  const name = typeof meta.name === 'string' ? meta.name : '';
  return `${String(object.kind)} "${namespace}/${name}" (apiVersion ${String(object.apiVersion)}) has a pod template, but meshcap inject does not inject that kind: copied unchanged (the webhook injects its pods when they are created)`;
}