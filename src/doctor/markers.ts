import type { MarkerId } from './types.js';

/**
 * Context patterns. A marker is "seen" when any of its patterns matches any line;
 * signatures in the knowledge base use markers to count only in the right context
 * (e.g. "line 2 failed" is strong evidence only next to `-N ISTIO_...`).
 * Like signatures, every pattern uses bounded quantifiers only.
 */
export const MARKERS: Readonly<Record<MarkerId, readonly RegExp[]>> = {
  // A restore input or command that creates a mesh-owned chain.
  'mesh-chain-create': [/-N (?:ISTIO|KUMA_MESH|PROXY_INIT|CONSUL_PROXY|CONSUL_DNS)_/],
  'chain-exists': [/Chain already exists/i],
  'restore-line-failed': [/line \d{1,7} failed/, /Error occurred at line: \d{1,7}/],
  'init-crashloop': [
    /Init:CrashLoopBackOff/,
    /Init:Error/,
    /Back-off restarting failed container (?:istio-init|istio-validation|linkerd-init|linkerd-network-validator|kuma-init|kuma-validation|consul-connect-inject-init|consul-connect-init)/,
  ],
  // Output of one of the capture installers, or their chains.
  'mesh-init': [
    /istio-init|istio-iptables|pilot-agent|istio-validation|istio-cni/,
    /linkerd-init|proxy-init|linkerd-cni|linkerd-network-validator/,
    /kuma-init|kumactl install transparent-proxy|kuma-cni|kuma-validation/,
    /connect-init|connect-inject-init|consul connect redirect-traffic|consul-cni/,
    /ISTIO_(?:INBOUND|OUTPUT|REDIRECT)|PROXY_INIT_(?:REDIRECT|OUTPUT)|KUMA_MESH_|CONSUL_PROXY_/,
    /Istio iptables (?:environment|variables)/,
  ],
  // A sidecar proxy is part of the picture.
  sidecar: [
    /istio-proxy|linkerd-proxy|kuma-sidecar|consul-dataplane|envoy-sidecar|pilot-agent/,
    /\benvoy\b/i,
    /sidecar\.istio\.io|linkerd\.io\/inject|kuma\.io\/sidecar|consul\.hashicorp\.com\/connect-inject/,
    // Capture is active towards Envoy's outbound port.
    /REDIRECT --to-ports? 15001\b/,
  ],
  tproxy: [
    /\bTPROXY\b/,
    /fwmark (?:1337|0x539)|lookup 133\b|table 133\b|tproxy-mark|INBOUND_INTERCEPTION_MODE=TPROXY|interceptionMode: ?TPROXY/,
  ],
  job: [
    /Controlled By:\s{1,20}Job\//,
    /"kind": ?"(?:Job|CronJob)"/,
    /\bjob-name=|batch\.kubernetes\.io\/job-name|\bkind: (?:Job|CronJob)\b/,
    /^(?:cronjob|job)\.batch\//,
    /^NAME\s{1,40}(?:DESIRED\s{1,40}SUCCESSFUL|COMPLETIONS\s{1,40}DURATION)\b/,
    /^Pods Statuses:\s/,
    // Helm hook Jobs, known to the user only by their names or Helm's error.
    /\bfailed (?:pre|post)-(?:install|upgrade|rollback|delete)\b/,
    /\bhelm\.sh\/hook\b/,
    /-(?:pre|post)-(?:install|upgrade|rollback|delete)(?:-job)?-[a-z0-9]{5}\b/,
    // CronJob pods are named <cronjob>-<8..10 digit schedule>-<5 chars>.
    /^(?:pod\/)?[a-z0-9][-a-z0-9]{0,200}-\d{8,10}-[a-z0-9]{5}\s/,
  ],
  cni: [
    /istio-validation|istio-cni|--run-validation|cni\.istio\.io/,
    /linkerd-network-validator|linkerd-cni|kuma-validation|kuma-cni|consul-cni/,
    /meshcap-cni|meshcap cni agent/,
  ],
  selinux: [/avc:\s{1,4}denied|type=AVC|SELinux|selinux|scontext=/],
  'must-be-root': [
    /you must be root/,
    /you need to have root privileges/,
    /can't open lock file [^\s]{1,200}: Permission denied/,
  ],
  // The capture step was run from a non-root shell (`user@host:~$`) or `id` shows a non-zero uid.
  'nonroot-shell': [/^[a-z_][a-z0-9_-]{0,31}@[A-Za-z0-9.-]{1,64}:[^\s$#]{0,200}\$ /, /^uid=[1-9]\d{0,9}\(/],
  'xtables-lock': [/holding the xtables lock|Can't lock \/[^\s:]{1,200}: Resource temporarily unavailable/],
  ip6tables: [/\bip6tables/],
  'nft-binary-missing': [
    /exec: "nft": executable file not found/,
    /(?:nft|nftables) binary (?:is )?(?:missing|not found)|could not find nftables binary/,
    /\bnft: (?:command )?not found/,
  ],
  // An iptables version line or header from the nf_tables variant.
  'nf-tables-version': [/\biptables(?:-nft)?(?:-save|-restore)? v1\.\d{1,2}\.\d{1,2} \(nf_tables\)/],
  // `kubectl get jobs` headers, old and new.
  'job-table': [/^NAME\s{1,40}(?:DESIRED\s{1,40}SUCCESSFUL|COMPLETIONS\s{1,40}DURATION|STATUS\s{1,40}COMPLETIONS)\b/],
  // Logs of, or a reference to, one of the application's own init containers.
  'app-init-container': [
    /\bvault-agent-init\b|app=vault-env\b/,
    /\blogs\b[^\n]{0,200}\s(?!istio-|linkerd-|kuma-|consul-)(?:[a-z0-9][a-z0-9-]{0,40})?(?:migrat[a-z]{0,5}|wait-for[a-z0-9-]{0,30}|-init)\b/,
    /spec\.initContainers\{(?!istio-|linkerd-|kuma-|consul-)[a-z0-9-]{1,60}\}/,
  ],
  // A CNI validator's probe that nothing redirected: the rules are absent.
  'probe-unredirected': [
    /Error connecting to (?:127\.0\.0\.6|\[?::6\]?):15002[^\n]{0,120}connection refused/,
    /127\.0\.0\.6:15002[^\n]{0,80}(?:Connection|connection) refused/,
    /Failed to validate networking configuration|Unable to connect to validator/,
  ],
  // The API server calling an admission webhook: certificate errors there are about the webhook, not a proxy.
  'webhook-call': [/failed calling (?:admission )?webhook|Failed calling webhook/],
};

/**
 * Markers specific enough to quote as evidence when they enable a signature.
 * The broad ones (any mention of a mesh, a sidecar, CNI or ip6tables) only gate.
 */
export const QUOTABLE_MARKERS: ReadonlySet<MarkerId> = new Set<MarkerId>([
  'mesh-chain-create',
  'chain-exists',
  'restore-line-failed',
  'init-crashloop',
  'tproxy',
  'job',
  'must-be-root',
  'nonroot-shell',
  'xtables-lock',
  'nft-binary-missing',
  'selinux',
  'nf-tables-version',
  'job-table',
  'app-init-container',
]);

