/** The bench's AdmissionReview, shared by the webhook load test and the engine micro-bench. */

/**
 * A pod as a Deployment's ReplicaSet creates it: two containers, probes,
 * annotations, owner, managedFields. `variant` > 0 gives a pod of another
 * workload (its names, labels, image tags and ports differ), for the
 * distinct-pods run where no answer can be reused. Every request of the
 * API server has its own uid.
 */
export function realisticReview(variant = 0, uid = '0a1b2c3d-4e5f-6789-abcd-ef0123456789'): string {
  const app = variant === 0 ? 'checkout' : `checkout-${variant}`;
  const hash = variant === 0 ? '7d4b9c8f6d' : (0x7d4b9c8f6d + variant).toString(16).slice(-10);
  const container = (name: string, port: number) => ({
    name,
    image: `registry.example/team/${name}:1.4.${2 + variant}`,
    ports: [{ name: 'http', containerPort: port + (variant % 100), protocol: 'TCP' }],
    env: Array.from({ length: 8 }, (_, i) => ({ name: `SETTING_${i}`, value: `value-${i}` })),
    resources: { requests: { cpu: '250m', memory: '256Mi' }, limits: { cpu: '1', memory: '512Mi' } },
    livenessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 10 },
    readinessProbe: { httpGet: { path: '/ready', port }, periodSeconds: 5 },
    volumeMounts: [{ name: 'config', mountPath: '/etc/app' }],
    terminationMessagePath: '/dev/termination-log',
    terminationMessagePolicy: 'File',
    imagePullPolicy: 'IfNotPresent',
  });
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName: `${app}-${hash}-`,
      namespace: 'shop',
      labels: { app, version: 'v3', 'pod-template-hash': hash, 'app.kubernetes.io/part-of': 'shop' },
      annotations: {
        'traffic.sidecar.istio.io/excludeOutboundIPRanges': '169.254.169.254/32',
        'traffic.sidecar.istio.io/excludeInboundPorts': '9090',
        'prometheus.io/scrape': 'true',
        'prometheus.io/port': '9090',
      },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `${app}-${hash}`, uid: '6f1c2f7e-2b0a-4c1e-9d1e-0d7a9c3b1f00', controller: true, blockOwnerDeletion: true }],
      managedFields: [{ manager: 'kube-controller-manager', operation: 'Update', apiVersion: 'v1', fieldsType: 'FieldsV1', fieldsV1: { 'f:metadata': { 'f:generateName': {}, 'f:labels': {} } } }],
    },
    spec: {
      serviceAccountName: app,
      containers: [container(app, 8080), container('cache', 6379)],
      volumes: [{ name: 'config', configMap: { name: `${app}-config` } }],
      restartPolicy: 'Always',
      terminationGracePeriodSeconds: 30,
      dnsPolicy: 'ClusterFirst',
    },
  };
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      requestKind: { group: '', version: 'v1', kind: 'Pod' },
      requestResource: { group: '', version: 'v1', resource: 'pods' },
      namespace: 'shop',
      operation: 'CREATE',
      userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller', groups: ['system:serviceaccounts', 'system:authenticated'] },
      object: pod,
      oldObject: null,
      dryRun: false,
      options: { kind: 'CreateOptions', apiVersion: 'meta.k8s.io/v1' },
    },
  });
}
