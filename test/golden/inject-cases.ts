/**
 * Istio's injection anchors (../shared/anchors/istio-inject, CASES.md) and the
 * meshcap settings that stand for each row's "Run with" column. Settings start
 * from Istio's chart defaults (Istio's image, hold off) so the comparison is
 * like for like; meshcap's own defaults differ only in the init image and hold.
 */
import { DEFAULT_SETTINGS, type InjectSettings } from '../../src/inject/settings.js';

export interface InjectCase {
  readonly n: number;
  /** Where input and golden are: the shared anchors (default) or Istio goldens kept in test/fixtures/istio-inject. */
  readonly dir?: 'anchors' | 'fixtures';
  readonly input: string;
  /** undefined: the case must fail. */
  readonly golden?: string;
  readonly settings?: Partial<InjectSettings>;
  /** Every pod is expected to be skipped and the text to pass through unchanged. */
  readonly skipped?: boolean;
  /** Substrings the failure message must contain. */
  readonly error?: readonly string[];
  /** Known, deliberate differences (field -> why). */
  readonly differs?: Readonly<Record<string, string>>;
}

export const ISTIO_LIKE: InjectSettings = {
  ...DEFAULT_SETTINGS,
  initStyle: 'istio',
  hub: 'registry.istio.io/testing',
  tag: 'latest',
  holdApplicationUntilProxyStarts: false,
};

const legacy = { nativeSidecars: false };

export const INJECT_CASES: readonly InjectCase[] = [
  { n: 1, input: 'hello.yaml', golden: 'hello.yaml.injected' },
  { n: 2, input: 'hello.yaml', golden: 'hello-old-version.yaml.injected', settings: legacy },
  { n: 3, input: 'hello.yaml', golden: 'hello.yaml.cni.injected', settings: { cni: true, mesh: { ...DEFAULT_SETTINGS.mesh, network: 'network1' } } },
  { n: 4, input: 'hello.yaml', golden: 'hello-tproxy.yaml.injected', settings: { interceptionMode: 'TPROXY' } },
  { n: 5, input: 'multi-container.yaml', golden: 'multi-container.yaml.injected' },
  { n: 6, input: 'traffic-annotations.yaml', golden: 'traffic-annotations.yaml.injected',
    differs: { resources: 'quantities are copied as written (4000m), Istio canonicalises them ("4")' } },
  { n: 7, input: 'traffic-annotations-empty-includes.yaml', golden: 'traffic-annotations-empty-includes.yaml.injected' },
  { n: 8, input: 'traffic-annotations-bad-includeipranges.yaml', error: ['traffic.sidecar.istio.io/includeOutboundIPRanges', '"bad"'] },
  { n: 9, input: 'init-no-intercept-no-native-sidecar.yaml', golden: 'init-no-intercept-no-native-sidecar.yaml.injected' },
  { n: 10, input: 'reroute-virtual-interfaces.yaml', golden: 'reroute-virtual-interfaces.yaml.injected',
    settings: { statusPort: 123, readiness: { initialDelaySeconds: 100, periodSeconds: 200, failureThreshold: 300 } },
    differs: { annotations: 'prometheus.io/port follows the status port (123), where merged metrics are served; Istio keeps the mesh value 15020' } },
  { n: 11, input: 'status_annotations.yaml', golden: 'status_annotations.yaml.injected',
    differs: { annotations: 'prometheus.io/port follows the status port annotation (123), where merged metrics are served; Istio keeps the mesh value 15020' } },
  { n: 12, input: 'hello-host-network.yaml', golden: 'hello-host-network.yaml.injected', skipped: true },
  { n: 13, input: 'hello-ignore.yaml', golden: 'hello-ignore.yaml.injected', skipped: true },
  { n: 14, input: 'merge-probers.yaml', golden: 'merge-probers.yaml.injected', settings: { holdApplicationUntilProxyStarts: true },
    differs: Object.fromEntries(['lifecycle', 'proxyArgs', 'proxyProbes'].map((field) => [field,
      'the old proxy is stripped as injected whichever list it is in; Istio re-applies its fields (--concurrency 2, postStart, probe) as user overrides, its documented quirk'])) },
  { n: 15, input: 'native-sidecar.yaml', golden: 'native-sidecar.yaml.injected' },
  { n: 16, input: 'native-sidecar.yaml', golden: 'native-sidecar-old-version.yaml.injected', settings: legacy },
  { n: 17, input: 'native-sidecar-opt-out.yaml', golden: 'native-sidecar-opt-out.yaml.injected' },
  { n: 17, input: 'native-sidecar-opt-out.yaml', golden: 'native-sidecar-opt-out.yaml.injected', settings: legacy },
  { n: 18, input: 'hello-probes-proxyHoldApplication-ProxyConfig.yaml', golden: 'hello-probes-proxyHoldApplication-ProxyConfig.yaml.injected' },
  { n: 19, input: 'hello-probes.yaml', golden: 'hello-probes.yaml.injected' },
  { n: 20, input: 'tcp-probes.yaml', golden: 'tcp-probes.yaml.injected' },
  { n: 21, input: 'proxy-override.yaml', golden: 'proxy-override.yaml.injected',
    differs: { resources: 'quantities are copied as written (3000m), Istio canonicalises them ("3")' } },
  { n: 22, input: 'statefulset.yaml', golden: 'statefulset.yaml.injected' },
  { n: 23, input: 'job.yaml', golden: 'job.yaml.injected' },
  { n: 24, input: 'cronjob.yaml', golden: 'cronjob.yaml.injected',
    differs: { labels: 'written to the pod template (Istio: jobTemplate.metadata, where they never reach the pod)' } },
  { n: 25, input: 'list.yaml', golden: 'list.yaml.injected' },
  { n: 26, input: 'hello-multi.yaml', golden: 'hello-multi.yaml.injected' },
  { n: 27, input: 'frontend.yaml', golden: 'frontend.yaml.injected' },
];

const fixture = { dir: 'fixtures' } as const;

/** Istio's own goldens for the behaviours of issue 15 (test/fixtures/istio-inject/PROVENANCE.md), run with the settings of Istio's test rows. */
export const FIXTURE_CASES: readonly InjectCase[] = [
  { n: 101, ...fixture, input: 'proxy-override-runas.yaml', golden: 'proxy-override-runas.yaml.injected' },
  { n: 102, ...fixture, input: 'proxy-override-runas.yaml', golden: 'proxy-override-runas.yaml.tproxy.injected', settings: { interceptionMode: 'TPROXY' } },
  { n: 103, ...fixture, input: 'proxy-override-runas.yaml', golden: 'proxy-override-runas.yaml.cni.injected', settings: { cni: true } },
  { n: 104, ...fixture, input: 'gateway.yaml', golden: 'gateway.yaml.injected' },
  { n: 105, ...fixture, input: 'deploymentconfig.yaml', golden: 'deploymentconfig.yaml.injected' },
  { n: 106, ...fixture, input: 'prometheus-scrape.yaml', golden: 'prometheus-scrape.yaml.injected' },
  { n: 107, ...fixture, input: 'prometheus-scrape2.yaml', golden: 'prometheus-scrape2.yaml.injected' },
  { n: 108, ...fixture, input: 'grpc-agent.yaml', error: ['inject.istio.io/templates', '"grpc-agent"'] },
];
