import type { CauseId, KnowledgeEntry, Signature } from './types.js';

/**
 * The doctor's knowledge base: one entry per cause, as data. Signatures are
 * matched line by line; their weights combine as independent evidence
 * (1 - Π(1 - w)), once per group. Every regex uses bounded quantifiers only,
 * so matching stays linear on hostile input (test/unit/doctor/knowledge.test.ts
 * rejects `*`, `+` and `{n,}`).
 *
 * Incidents behind the signatures are listed in shared/research
 * (istio-iptables.md §12, peers.md, injection.md §9).
 */

type SigOptions = Omit<Signature, 'name' | 'pattern' | 'weight'>;

function sig(name: string, pattern: RegExp, weight: number, options: SigOptions = {}): Signature {
  return { name, pattern, weight, ...options };
}

export const KNOWLEDGE: readonly KnowledgeEntry[] = [
  {
    id: 'rerun-existing-chains',
    title: 'The capture init re-ran over chains it had already created',
    signatures: [
      sig('chain-exists-mesh', /Chain already exists/i, 0.9, {
        group: 'chain-exists',
        with: ['mesh-chain-create', 'mesh-init'],
      }),
      sig('chain-exists', /Chain already exists/i, 0.6, { group: 'chain-exists' }),
      sig('restore-line-2-failed-context', /line 2 failed/, 0.85, {
        group: 'line-2',
        with: ['mesh-chain-create', 'chain-exists', 'init-crashloop'],
      }),
      sig('restore-line-2-failed', /line 2 failed/, 0.45, { group: 'line-2' }),
      sig('restore-error-line-2', /Error occurred at line: 2\b/, 0.6, {
        group: 'line-2',
        with: ['chain-exists', 'mesh-chain-create'],
        unless: ['xtables-lock'],
      }),
      sig('reconcile-recommended', /reconcile is recommended but no-reconcile flag is set/, 0.6),
      sig(
        'residues-found',
        /Found residues of old iptables rules\/chains, reconciliation is recommended/,
        0.4,
      ),
      // Deleting a chain that a rule still jumps to: the init is re-running over its own earlier rules.
      sig('chain-still-referenced', /iptables: Too many links\./, 0.6, { with: ['mesh-init', 'mesh-chain-create'] }),
      sig('linkerd-skipping-existing', /skipping iptables setup: found \d{1,4} existing chains?/, 0.5),
      sig('forced-apply-failed', /force(?:d)?[- ]apply/i, 0.3, { with: ['chain-exists'] }),
      sig('container-gc-mentioned', /docker system prune|maximum-dead-containers|crictl rm/, 0.2, {
        with: ['chain-exists', 'restore-line-failed'],
      }),
      // A crash-looping capture init is most often this cause, but alone it proves little.
      sig('init-crashloop-weak', /Init:CrashLoopBackOff/, 0.15, { group: 'init-crashloop' }),
    ],
    explanation:
      'The capture init container ran a second time in the same pod network namespace and tried to create ' +
      'chains that the first run had already created. Its iptables-restore input starts with `-N ISTIO_...` ' +
      'under `--noflush`, so the restore fails at line 2 (line 1 is `* nat`) with "Chain already exists". ' +
      'Kubelet re-runs init containers when the exited init container is removed from the node (for example by ' +
      '`docker system prune` or an aggressive container GC) or when the pod sandbox is recreated; the init then ' +
      'fails on every retry and the pod sits in Init:CrashLoopBackOff even though the rules are in place. The same ' +
      "happens after a partial first run (IPv4 applied, IPv6 failed) or with Consul's connect-init, which never " +
      'checks for existing chains.',
    fix: [
      "Use meshcap's idempotent init: run `meshcap apply` (same capture flags) in place of istio-iptables; it reconciles its own chains in one restore transaction and succeeds when they already exist.",
      "Stop removing exited init containers on nodes: do not run `docker system prune` / `crictl rm` on exited containers from cron, and keep kubelet's container GC from deleting the last instance (`--maximum-dead-containers-per-container` >= 1, never `--maximum-dead-containers=0`).",
      'Unstick an affected pod now with `kubectl delete pod <pod>`: its replacement gets a fresh network namespace.',
      'Istio 1.24+ skips the apply when the existing rules match; if it still fails the state has drifted (partial IPv4/IPv6 apply, foreign rule inside an ISTIO_ chain), which `meshcap apply` repairs and istio-iptables only repairs with `--reconcile`.',
      'Consider istio-cni, which programs the netns once at sandbox creation and leaves only a validation container in the pod.',
    ],
    references: [
      'https://github.com/istio/istio/issues/42792',
      'https://github.com/istio/istio/issues/32145',
      'https://github.com/istio/istio/issues/40169',
      'https://github.com/istio/istio/issues/24148',
      'https://github.com/linkerd/linkerd2/issues/5786',
      'https://github.com/linkerd/linkerd2/issues/9267',
    ],
  },
  {
    id: 'nat-table-unavailable',
    title: 'The kernel offers no nat table to the iptables backend in use',
    signatures: [
      sig('restore-unable-init-nat', /\biptables-restore[^\n]{0,40}: unable to initialize table 'nat'/, 0.9, {
        group: 'nat-init',
      }),
      sig('unable-init-nat', /unable to initialize table 'nat'/, 0.8, {
        group: 'nat-init',
        notOnLine: /ip6tables/,
      }),
      sig('cant-init-nat', /can't initialize iptables table `nat': Table does not exist/, 0.9, {
        group: 'nat-init',
      }),
      sig('cant-init-nat-generic', /can't initialize iptables table `nat'/, 0.6, {
        group: 'nat-init',
        notOnLine: /Permission denied|must be root/,
      }),
      // A restore error cut before the table name; in a capture init's output the first table is nat.
      sig('restore-unable-init-fragment', /iptables-restore: unable to in(?:i|it|iti|itia|itial)?(?:\.\.\.|…|$)/, 0.5, { group: 'nat-init', with: ['mesh-init'] }),
      sig('iptables-who', /iptables who\? \(do you need to insmod\?\)/, 0.8),
      sig('do-you-need-insmod', /Table does not exist \(do you need to insmod\?\)/, 0.6, {
        notOnLine: /ip6tables|table `(?:raw|mangle|security)'/,
      }),
      sig('no-lib-modules', /modprobe: can't change directory to '\/lib\/modules'/, 0.5),
      sig('probe-no-kernel-support', /binary iptables(?:-legacy|-nft)? has no loaded kernel support/, 0.45, {
        unless: ['xtables-lock'],
      }),
      sig('iptable-nat-module', /\biptable_nat\b/, 0.3, { with: ['restore-line-failed', 'mesh-init'] }),
    ],
    explanation:
      'iptables could not open the `nat` table, which every mesh capture needs. Either the kernel modules behind ' +
      'it (`ip_tables`, `iptable_nat`, and the nf_nat core) are not loaded and the container cannot load them ' +
      '(no /lib/modules, no CAP_SYS_MODULE), or the tool picked the wrong backend: a legacy iptables binary on a ' +
      'node whose kernel only provides nf_tables (for example EKS AL2023 with kernel 6.12, RHEL 9). Istio 1.26 to ' +
      '1.27.0 probed only the filter table, so it chose legacy and then failed on nat.',
    fix: [
      'Load the modules on the node: `modprobe ip_tables iptable_nat iptable_mangle iptable_raw xt_REDIRECT xt_owner xt_multiport xt_conntrack` (and `ip6_tables ip6table_nat ...` for IPv6), and persist them in /etc/modules-load.d/.',
      'Or roll out a node-prep DaemonSet (privileged, /lib/modules mounted) that runs that modprobe before meshed pods land on the node; keep the node tainted until it has run.',
      'If the node is nf_tables-only, pin the nft backend: `meshcap apply --backend=nft`; istio-iptables 1.28+: `FORCE_IPTABLES_BINARY=nft` (proxyMetadata); Linkerd: `proxyInit.iptablesMode=nft`.',
      'Upgrade Istio to 1.27.1+/1.28, whose backend probe uses the nat table and falls back to nft (#57385).',
      "Or move capture to the node with istio-cni (`--set components.cni.enabled=true`), which uses the host's iptables.",
    ],
    references: [
      'https://github.com/istio/istio/issues/23009',
      'https://github.com/istio/istio/issues/57380',
      'https://github.com/linkerd/linkerd2/issues/7749',
      'https://github.com/linkerd/linkerd2/issues/8596',
      'https://github.com/hashicorp/consul-k8s/issues/960',
    ],
  },
  {
    id: 'backend-mismatch',
    title: 'Mesh rules live in the other iptables backend (legacy vs nft)',
    signatures: [
      // The nft tool warning that legacy holds tables: the canonical mismatch when the nft view shows no mesh chains.
      sig('legacy-tables-present-nft', /# Warning: ip6?tables-legacy tables present/, 0.85, {
        group: 'legacy-warning',
        with: ['nf-tables-version'],
      }),
      sig('legacy-tables-present', /# Warning: ip6?tables-legacy tables present/, 0.5, { group: 'legacy-warning' }),
      // Both variants' version lines in one paste: two tools on the same node disagree about the backend.
      sig('both-variants-in-use', /\bip6?tables(?:-save|-restore)? v1\.\d{1,2}\.\d{1,2} \(legacy\)/, 0.5, {
        group: 'two-variants',
        with: ['nf-tables-version'],
        notOnLine: /Permission denied|Cannot initialize|can't initialize|unable to initialize|not found|Couldn't load/,
      }),
      sig('kuma-mixed-types', /executables are of mixed types/, 0.7),
      sig('kuma-conflicting-modes', /conflicting (?:iptables )?modes/i, 0.5),
      sig('force-binary-mentioned', /FORCE_IPTABLES_BINARY=(?:nft|legacy)\b/, 0.15),
    ],
    explanation:
      'Linux has two iptables backends, legacy (x_tables) and nft (nf_tables), and each keeps its own tables. ' +
      'The capture rules were written through one backend while the tool you looked with (or kube-proxy, or a ' +
      'second run) uses the other: `iptables -S` then shows nothing although the pod is captured, or both backends ' +
      'hold a copy and it is hard to predict which one acts first. Causes: an init image whose default `iptables` ' +
      "differs from the node's, Istio's detection preferring legacy whenever legacy-save prints three lines, and " +
      'its own probe creating the legacy nat table so the next run in the same netns picks legacy (#61020).',
    fix: [
      'Look at both backends in the pod netns: `nsenter -t <pid> -n iptables-legacy-save` and `nsenter -t <pid> -n iptables-nft-save` (or `meshcap status --netns <name>`).',
      'Pin the backend the node uses: `meshcap apply --backend=nft` (or `--backend=legacy`); istio-iptables 1.28+: `FORCE_IPTABLES_BINARY=nft|legacy` in proxyMetadata; Linkerd: `proxyInit.iptablesMode`; Kuma: `--iptables-executables`.',
      'Remove the stale copy from the backend you do not use (flush and delete its ISTIO_/PROXY_INIT_/KUMA_MESH_ chains in that netns), or delete the pod to start from a fresh netns.',
      'Check with the same backend you installed with: `iptables-nft -t nat -S` vs `iptables-legacy -t nat -S`.',
    ],
    references: [
      'https://github.com/istio/istio/issues/61020',
      'https://github.com/istio/istio/issues/52357',
      'https://github.com/istio/istio/issues/49279',
      'https://github.com/istio/istio/issues/57827',
    ],
  },
  {
    id: 'iptables-userspace-bug',
    title: 'The iptables/nft userspace in the image is a known-bad version',
    signatures: [
      // iptables-nft-restore 1.8.0-1.8.3 does not load target extensions: "-j REDIRECT" is read as a jump to a chain.
      sig('target-parsed-as-chain', /\(nf_tables\)[^\n]{0,40}: Chain '(?:REDIRECT|TPROXY|RETURN|ACCEPT|DROP|MARK|CT|CONNMARK|DNAT|SNAT|MASQUERADE|LOG)' does not exist/, 0.9, { group: 'no-extensions' }),
      sig('target-parsed-as-chain-any', /Chain '(?:REDIRECT|TPROXY|MARK|CT|CONNMARK|DNAT|SNAT|MASQUERADE)' does not exist/, 0.75, { group: 'no-extensions' }),
      sig('nft-restore-118-couldnt-load-target', /iptables-restore v1\.8\.[0-3] \(nf_tables\): Couldn't load target `(?:REDIRECT|TPROXY|MARK|CT)'/, 0.75, { group: 'no-extensions' }),
      // Early nft-restore builds (1.8.0-1.8.4, e.g. Alpine 3.12's) reject valid restore lines outright.
      sig('early-nft-restore-unknown-arguments', /iptables-restore v1\.8\.[0-4] \(nf_tables\): unknown arguments found on commandline/, 0.6, { group: 'early-nft-restore' }),
      sig('nft-segfault', /\bnft\b[^\n]{0,80}(?:Segmentation fault|segfault|SIGSEGV)|segfault at [0-9a-f]{1,16} ip [0-9a-f]{1,16} sp [^\n]{0,80}\bnft\b/, 0.7),
      sig('save-restore-version-skew', /iptables(?:-nft)?-(?:save|restore) v1\.8\.(?:[89]|1[01])[^\n]{0,80}(?:unknown option|Couldn't load|line \d{1,6} failed)/, 0.4),
      sig('buggy-version-named', /iptables(?:-nft)?(?:-restore)? v1\.8\.[0-3] \(nf_tables\)/, 0.2, { with: ['restore-line-failed'] }),
    ],
    explanation:
      'The capture step ran a userspace iptables or nft with a known bug, so valid rules were rejected or mangled. ' +
      'iptables 1.8.0 to 1.8.3 in nf_tables mode (Debian buster ships 1.8.2, buster-backports 1.8.3) does not load ' +
      'target extensions in `iptables-nft-restore`, so `-j REDIRECT` is parsed as a jump to a chain called REDIRECT ' +
      '("Chain \'REDIRECT\' does not exist"), and up to 1.8.4 it rejects valid restore lines ("unknown arguments found on ' +
      'commandline", Alpine 3.12); rules saved by iptables-nft 1.8.8+ use a format older 1.8.7 binaries ' +
      'cannot read back (kubernetes#112477); nft 1.1.1 and later crash against hosts running nft < 1.1.1 on the same ' +
      'ruleset (istio#58492). The kernel and the configuration are fine; the binary is not.',
    fix: [
      'Use an init image with iptables >= 1.8.5 (Debian bullseye or later, Alpine 3.13+); on Debian buster use `iptables-legacy` (`update-alternatives --set iptables /usr/sbin/iptables-legacy`): buster-backports\' 1.8.3 has the same bug.',
      "Keep one iptables version per node: the init image's iptables-nft should be the node's version or older than 1.8.8 when the node runs 1.8.7 (kube-proxy images pin their iptables for this reason).",
      'For nft crashes on the host, pin the CNI image\'s nftables to the host\'s series (Istio pinned nftables for #58492 until distributions shipped the fix) or upgrade the host\'s nftables.',
      'meshcap probes the backend without changing state and renders the same rules for both variants: `meshcap apply --backend=legacy` sidesteps a broken nft-restore.',
    ],
    references: [
      'https://github.com/istio/istio/issues/23279',
      'https://github.com/kubernetes/kubernetes/issues/112477',
      'https://github.com/istio/istio/issues/58492',
    ],
  },
  {
    id: 'missing-extension',
    title: 'An iptables match, target or table the rules need is missing',
    signatures: [
      sig('extension-not-supported', /Extension [A-Za-z0-9_]{1,40} revision \d{1,3} not supported, missing kernel module\?/, 0.9),
      sig('couldnt-load', /Couldn't load (?:match|target) [`'"]?[A-Za-z0-9_-]{1,40}/, 0.75, {
        // Non-root runs print the same message (kuma#8412): then it is a permission problem.
        unless: ['must-be-root', 'nonroot-shell'],
      }),
      sig('no-chain-target-match', /No chain\/target\/match by that name/, 0.7, { unless: ['selinux'] }),
      sig('rule-append-enoent', /RULE_(?:APPEND|INSERT|REPLACE) failed \((?:No such file or directory|Operation not supported)\)/, 0.75),
      sig('rule-append-einval', /RULE_(?:APPEND|INSERT|REPLACE) failed \(Invalid argument\)/, 0.5),
      sig('unknown-option-to-ports', /unknown option "--to-ports?"/, 0.6),
      sig('invalid-argument-dmesg', /Invalid argument\. Run `dmesg' for more information/, 0.45),
      sig('modprobe-xt-failed', /modprobe: (?:FATAL: )?Module (?:xt_|ipt_|ip6t_|nft_)[A-Za-z0-9_]{1,30} not found/, 0.75),
      sig('raw-or-mangle-table', /unable to initialize table '(?:raw|mangle)'|can't initialize ip6?tables table `(?:raw|mangle)'/, 0.7),
      sig('xt-module-named', /\bxt_(?:owner|REDIRECT|multiport|conntrack|socket|mark|connmark|CT|comment|TPROXY)\b/, 0.2, {
        with: ['restore-line-failed', 'mesh-init'],
      }),
    ],
    explanation:
      'The rules use a kernel extension that this node does not provide or cannot load: typically `xt_owner` ' +
      '(the proxy-uid exemption), `xt_REDIRECT`, `xt_multiport` (DNS and port lists), `xt_conntrack`, the `CT` ' +
      'target and the raw table (DNS capture), or `xt_socket`/`xt_TPROXY` (TPROXY mode). The userspace iptables ' +
      'knows the extension, the kernel does not, so the rule is rejected ("No chain/target/match by that name" ' +
      'with legacy, "RULE_APPEND failed (No such file or directory)" with nft). With the nft backend these ' +
      'matches also need `nft_compat`.',
    fix: [
      "Read the extension name in the error (\"Couldn't load match `owner'\", \"Extension X revision 0 not supported\").",
      'Load it on the node: `modprobe xt_owner xt_REDIRECT xt_multiport xt_conntrack xt_mark xt_connmark xt_CT xt_comment` (TPROXY also `xt_TPROXY xt_socket nf_tproxy_ipv4 nf_tproxy_ipv6`; nft backend also `nft_compat`), persisted in /etc/modules-load.d/, or from a node-prep DaemonSet.',
      'Or avoid the feature: DNS capture (`ISTIO_META_DNS_CAPTURE`) needs the raw table and CT target, which WSL2/Docker Desktop kernels often lack; TPROXY needs xt_TPROXY and xt_socket, REDIRECT does not.',
      "If the init container does not run as root, \"Couldn't load match\" is a permission problem in disguise: see permission-denied.",
    ],
    references: [
      'https://github.com/istio/istio.io/pull/14028',
      'https://github.com/istio/istio/issues/37885',
      'https://github.com/istio/istio/issues/22500',
      'https://github.com/linkerd/linkerd2/issues/3160',
      'https://github.com/kumahq/kuma/issues/5137',
    ],
  },
  {
    id: 'permission-denied',
    title: 'The capture step lacks root, NET_ADMIN/NET_RAW or a writable lock file',
    signatures: [
      sig('must-be-root', /(?:Permission denied|Operation not permitted) \(you must be root\)/, 0.9),
      sig('kuma-root-required', /you need to have root privileges/, 0.85),
      sig('lock-file-unwritable', /can't open lock file [^\s]{1,200}: (?:Permission denied|Read-only file system)/, 0.85),
      sig('nft-cache-eperm', /cache initialization failed: Operation not permitted/, 0.7),
      sig('lock-erofs', /xtables\.lock[^\n]{0,80}(?:Read-only file system|EROFS)|EROFS[^\n]{0,80}xtables\.lock/, 0.85),
      // A validation probe that switches to the proxy uid needs CAP_SETUID/CAP_SETGID, which istio-init does not have.
      sig('probe-uid-eperm', /(?:setuid|setgid|setgroups|uv_spawn|spawn)[^\n]{0,80}\bEPERM\b|\bEPERM\b[^\n]{0,120}\b(?:uid|gid|setuid|setgid)\b/, 0.65),
      sig('needs-cap-setuid', /CAP_SET(?:UID|GID)[^\n]{0,80}(?:missing|required|needed|not permitted|lacks)|(?:needs|requires|without)[^\n]{0,40}CAP_SET(?:UID|GID)/, 0.6),
      sig('rtnetlink-eperm', /RTNETLINK answers: Operation not permitted/, 0.6),
      sig('psa-net-admin', /must not include "?NET_ADMIN|"NET_ADMIN"[^\n]{0,40}capability may not be added|capabilities\.add[^\n]{0,60}NET_ADMIN[^\n]{0,40}(?:forbidden|not allowed|Invalid value)/, 0.85),
      sig('psa-violation', /violates PodSecurity "(?:restricted|baseline)/, 0.55, { with: ['mesh-init', 'sidecar'] }),
      sig('scc-rejected', /unable to validate against any security context constraint/, 0.7),
      sig('nonroot-couldnt-load', /Couldn't load (?:match|target)/, 0.8, { with: ['nonroot-shell'] }),
      sig('generic-permission', /\b(?:iptables|ip6tables|iptables-restore|nft|ip)\b[^\n]{0,80}Permission denied/, 0.35, {
        unless: ['selinux'],
        notOnLine: /\/tmp\/iptables-rules/,
      }),
    ],
    explanation:
      'The process that writes the capture rules is not allowed to. iptables, nft and `ip rule` need root with ' +
      "CAP_NET_ADMIN (and CAP_NET_RAW) in the pod's network namespace. A policy (PodSecurity `restricted`, an " +
      'OpenShift SCC, Kyverno/Gatekeeper) may have stripped the capabilities or forced a non-root user, or the ' +
      'image runs as non-root relying on file capabilities the runtime does not honour. With the legacy backend ' +
      'iptables also opens /run/xtables.lock for writing, which fails on a read-only root filesystem.',
    fix: [
      'Give the capture init what it needs: `securityContext: {runAsUser: 0, runAsNonRoot: false, capabilities: {add: [NET_ADMIN, NET_RAW]}}`; check that no webhook or policy removed them (`kubectl get pod -o yaml`).',
      'In PodSecurity `restricted`/`baseline` namespaces or under a strict OpenShift SCC, use istio-cni (or linkerd-cni/kuma-cni) so the pod needs no privileged init container.',
      "For \"can't open lock file /run/xtables.lock\": mount a writable emptyDir and point `XTABLES_LOCKFILE` at a file in it, or use the nft backend, which does not take the xtables lock.",
      "Linkerd's proxy-init runs as uid 65534 with file capabilities: keep NET_ADMIN and NET_RAW in the container's capability set so they can take effect.",
      "A validation probe that connects as the proxy uid (`meshcap apply --verify`, `--run-validation`) needs CAP_SETUID and CAP_SETGID, which istio-init's capability set does not include: add them to the init container, or use a meshcap that proves the capture with its own connection and skips the proxy-uid probes, naming the capabilities.",
    ],
    references: [
      'https://github.com/linkerd/linkerd2/issues/7938',
      'https://github.com/linkerd/linkerd2/pull/4692',
      'https://github.com/kumahq/kuma/issues/8412',
    ],
  },
  {
    id: 'xtables-lock',
    title: 'Another process held the xtables lock',
    signatures: [
      sig('another-app-holding', /Another app is currently holding the xtables lock/, 0.95),
      sig('cant-lock', /Can't lock \/[^\s:]{1,200}: Resource temporarily unavailable/, 0.9),
      sig('stopped-waiting', /Stopped waiting after \d{1,5}s/, 0.6),
      sig('waiting-for-exit', /waiting \(\d{1,5}s\) for it to exit/, 0.6),
    ],
    explanation:
      'With the legacy backend every writer takes an exclusive lock on /run/xtables.lock. kube-proxy, the CNI ' +
      "plugin, firewalld or another pod's init held it, and the capture step gave up: without `--wait` at once, " +
      'with `--wait=N` after N seconds. In CNI mode all pods on a node share the host lock, so bursts of pod starts ' +
      'collide; Istio 1.26-1.28.5 also ran its backend probe without `--wait`.',
    fix: [
      'Wait for the lock with a bound: `meshcap apply --lock-timeout=30` (istio-iptables uses `--wait=30` for legacy iptables >= 1.6.2).',
      'Upgrade Istio to 1.28.6/1.29+, where the backend probe waits too (#58582).',
      "In CNI mode give each pod its own lock (`XTABLES_LOCKFILE` set to a per-netns path, as istio-cni and kuma-cni do) instead of the node's /run/xtables.lock.",
      'Find the holder on the node: `fuser -v /run/xtables.lock` or `lsof /run/xtables.lock`.',
      'Prefer the nft backend (`meshcap apply --backend=nft`): iptables-nft does not use the xtables lock.',
    ],
    references: [
      'https://github.com/istio/cni/issues/23',
      'https://github.com/istio/istio/pull/47002',
      'https://github.com/istio/istio/issues/58507',
    ],
  },
  {
    id: 'ipv6-unavailable',
    title: 'IPv6 capture was attempted where IPv6 or ip6tables support is missing',
    signatures: [
      sig('ipv6-disabled-on-device', /IPv6 is disabled on (?:this|nexthop) device/, 0.9),
      sig('ip6tables-restore-unable', /ip6tables-restore[^\n]{0,40}: unable to initialize table/, 0.85, { group: 'ip6-table' }),
      sig('cant-init-ip6tables-table', /can't initialize ip6tables table `(?:nat|filter)'/, 0.85, {
        group: 'ip6-table',
        notOnLine: /Permission denied|must be root/,
      }),
      sig('address-family-not-supported', /Address family not supported by protocol/, 0.7),
      sig('bind-v6-loopback', /(?:AF=10|\[::1?\]:\d{1,5})[^\n]{0,140}(?:Cannot|cannot) assign requested address/, 0.6),
      sig('ip6-probe-no-kernel-support', /binary ip6tables(?:-legacy|-nft)? has no loaded kernel support/, 0.6, {
        unless: ['xtables-lock'],
      }),
      sig('ip6tables-save-failed', /ip6tables-save[^\n]{0,80}(?:exit status [1-9]|failed)/, 0.5),
      sig('add-v6-loopback-failed', /(?:::6\/128|::6 )[^\n]{0,80}(?:failed|error|permission denied|not supported)/i, 0.6),
      sig('ip6tables-restore-failed', /ip6tables-restore[^\n]{0,60}(?:line \d{1,6} failed|exit status [1-9])/, 0.35, {
        unless: ['chain-exists'],
      }),
    ],
    explanation:
      'The tool wanted to install IPv6 rules or the `::6` loopback address, but the node has IPv6 disabled ' +
      '(`ipv6.disable=1`, `net.ipv6.conf.all.disable_ipv6=1`) or lacks the ip6tables modules (`ip6_tables`, ' +
      "`ip6table_nat`, e.g. on GKE COS). Istio turns IPv6 on when the pod's first address is IPv6 or dual-stack is " +
      'set; Istio 1.26-1.27.1 also failed its ip6tables probe on IPv6-less nodes even for IPv4-only pods. When the ' +
      'IPv4 part succeeded and the IPv6 part failed, every later run also fails (now with "line 2 failed").',
    fix: [
      'IPv4-only pod: turn IPv6 capture off explicitly with `meshcap apply --ipv6=false`; with istio-iptables unset `ISTIO_DUAL_STACK`/`DUAL_STACK` in proxyMetadata and upgrade to 1.27.2/1.28+, where an ip6tables failure is not fatal while IPv6 is off (#57200).',
      'Pod that needs IPv6: load `ip6_tables ip6table_nat ip6table_mangle ip6table_raw` on the node and enable IPv6 (`sysctl -w net.ipv6.conf.all.disable_ipv6=0`), e.g. from a node-prep DaemonSet.',
      'After fixing the node, recreate the pod (`kubectl delete pod`) or use `meshcap apply`, which reconciles the half-applied IPv4 state instead of failing at line 2.',
      'Kuma treats IPv6 as best-effort; for Kuma check that kuma-init runs a version that skips IPv6 when ip6tables is unusable.',
    ],
    references: [
      'https://github.com/istio/istio/issues/57199',
      'https://github.com/istio/istio/issues/53161',
      'https://github.com/istio/istio/issues/53147',
      'https://github.com/kumahq/kuma/issues/2046',
    ],
  },
  {
    id: 'binary-missing',
    title: 'A binary the capture step runs is not installed where it runs',
    signatures: [
      sig('exec-not-found', /executable file not found in \$PATH|exec: "[a-z0-9-]{1,40}": executable file not found/, 0.8, { group: 'not-found' }),
      sig('nft-binary-missing', /could not find nftables binary|nativeNftables is enabled, but the nft binary is missing|nft binary (?:is )?(?:missing|not found)/, 0.9, { group: 'not-found' }),
      sig('nft-command-not-found', /\bnft: (?:command )?not found/, 0.8, { group: 'not-found' }),
      sig('env-no-such-file', /env: [‘'`"]?(?:ip6?tables[A-Za-z-]{0,20}|xtables[A-Za-z-]{0,20}|ip|nsenter)[’'`"]?: No such file or directory/, 0.85),
      sig('shell-not-found', /\b(?:ip6?tables(?:-nft|-legacy)?(?:-save|-restore)?|xtables-(?:nft|legacy)-multi|ip|nsenter): (?:command )?not found/, 0.85),
      sig('nsenter-failed-exec', /nsenter: failed to execute [^\s:]{1,120}: No such file or directory/, 0.85),
      sig('shared-library-missing', /error while loading shared libraries: lib(?:mnl|nftnl|xtables|ip4tc|ip6tc|nftables)[^\s:]{0,20}/, 0.8),
      sig('fork-exec-enoent', /fork\/exec [^\s:]{1,160}: no such file or directory/, 0.8),
      sig('kuma-could-not-locate', /could not locate executable/, 0.75),
      sig('kuma-no-valid-executables', /failed to find valid nft or legacy executables/, 0.5),
      sig('exit-127', /exit (?:status|code):? ?127\b/i, 0.45, { with: ['mesh-init'] }),
    ],
    explanation:
      'The capture step executed a program that does not exist in the place it runs: the init image lacks ' +
      "`iptables-nft-save`/`ip6tables` or `ip`, or, in CNI mode, the plugin runs the node's own binaries through " +
      'nsenter and the node has no such binary (Bottlerocket has no iptables-nft-save, linkerd2#14538). With native ' +
      'nftables the binary is `nft`: `exec: "nft": executable file not found in $PATH` (istio-cni runs the node\'s nft ' +
      'in sidecar mode, istio#57978; the distroless image lacked it, istio#57333). The kernel may support nftables ' +
      "perfectly well; the program is simply absent. Exit code 127 is the shell's \"command not found\".",
    fix: [
      'Use an init image that ships iptables with both backends (`iptables-legacy*`, `iptables-nft*`, the ip6tables variants) and iproute2.',
      'In CNI mode install iptables on the nodes, or pin the variant the node has: `meshcap apply --backend=legacy|nft`, Linkerd `proxyInit.iptablesMode` (proxy-init 2026+ falls back to another variant), Kuma `--iptables-executables`.',
      "Missing `nft`: install nftables on the nodes (istio-cni runs the host's `nft`), use a proxyv2 image that ships it (the distroless image gained `nftables-slim` in istio#57237), or turn `values.global.nativeNftables` off.",
      "Check inside the container: `kubectl debug` into the pod or run the image with `sh -c 'command -v iptables-nft-restore ip nft'`.",
    ],
    references: [
      'https://github.com/linkerd/linkerd2/issues/14538',
      'https://github.com/istio/istio/issues/57978',
      'https://github.com/istio/istio/issues/57333',
    ],
  },
  {
    id: 'nftables-unsupported',
    title: 'nf_tables is not usable where the capture runs (kernel support or chain types missing)',
    signatures: [
      // nf_tables itself unusable: the kernel (or the container's view of it) refuses the netlink family or chain types.
      sig('nft-init-failed', /Failed to initiali[sz]e nft: (?:Protocol not supported|Operation not supported|Invalid argument|No such file or directory)/, 0.9),
      sig('table-add-failed', /TABLE_ADD failed \((?:Invalid argument|Operation not supported|Protocol not supported|No such file or directory)\)/, 0.85),
      sig('chain-add-failed', /CHAIN_ADD failed \((?:No such file or directory|Operation not supported|Invalid argument)\)/, 0.75),
      // A missing nft binary is binary-missing; only a weak pointer that nft mode was wanted.
      sig('nft-mode-binary-missing', /nativeNftables is enabled, but the nft binary is missing/, 0.3),
      sig('generation-id', /Could not fetch rule set generation id: (?:Invalid argument|Protocol not supported|Operation not supported)/, 0.9, { group: 'generation-id' }),
      // The characteristic fragment, for lines cut before the errno.
      sig('generation-id-fragment', /Could not fetch rule set generation/, 0.8, { group: 'generation-id' }),
      sig('nft-cache-unsupported', /cache initialization failed: (?:Protocol not supported|Invalid argument|Operation not supported)/, 0.85),
      sig('nft-process-rule-unsupported', /Could not process rule: Operation not supported/, 0.7),
      sig('nft-process-rule', /Could not process rule: (?:No such file or directory|Invalid argument)/, 0.45),
      sig('consul-nft-apply', /failed to apply nftables rules/, 0.5),
    ],
    explanation:
      'The capture uses nf_tables (the nft iptables variant, Istio `--native-nftables` / `global.nativeNftables`, ' +
      "Consul's nftables mode) but the kernel, or the container's view of it, cannot serve it. How it reads depends " +
      'on the userspace: iptables-nft 1.8.x prints "Failed to initialize nft: Protocol not supported" when the ' +
      'nf_tables netlink family is absent, "TABLE_ADD failed (Invalid argument)" when the kernel has no nf_tables at ' +
      'all (vendor and board kernels), "CHAIN_ADD failed (No such file or directory)" when a chain type such as nat ' +
      "is missing (nft_chain_nat not loaded, or not loadable from a container), and \"Could not fetch rule set " +
      'generation id: Invalid argument" when the kernel is older than the userspace expects (older GKE COS, ' +
      'Synology/NAS kernels); nft itself says "Could not process rule: Operation not supported". A missing `nft` ' +
      'executable is a different cause: binary-missing.',
    fix: [
      'Kernel without nf_tables (TABLE_ADD, generation id, Failed to initialize nft): use the legacy backend, `meshcap apply --backend=legacy`, Linkerd `proxyInit.iptablesMode=legacy`, istio-iptables `FORCE_IPTABLES_BINARY=legacy`.',
      'Where the modules exist but are not loaded (CHAIN_ADD for nat): `modprobe nf_tables nft_compat nft_chain_nat nft_nat` on the node (node-prep DaemonSet); a container cannot load them itself.',
      'Native nftables on such a node: turn `values.global.nativeNftables` off until the kernel is upgraded.',
    ],
    references: [
      'https://github.com/linkerd/linkerd2/issues/9053',
      'https://github.com/docker/for-win/issues/517',
      'https://github.com/basecamp/kamal/pull/1762',
    ],
  },
  {
    id: 'selinux-denied',
    title: 'SELinux denied the capture step',
    signatures: [
      sig('avc-denied', /avc:\s{1,4}denied/, 0.9),
      sig('type-avc', /type=AVC msg=audit/, 0.85),
      sig('selinux-is-preventing', /SELinux is preventing/, 0.9),
      sig('container-scontext', /scontext=[a-z_]{1,30}:[a-z_]{1,30}:(?:container_t|svirt_lxc_net_t|iptables_t|spc_t)/, 0.5),
      sig('rules-file-denied', /\/tmp\/iptables-rules-[^\n]{0,100}(?:Permission denied|EACCES)/, 0.7),
      sig('module-request', /\{ ?module_request ?\}/, 0.6),
      // libiptc maps EPERM (no capability) to "Permission denied (you must be root)"; a bare "Permission denied"
      // is EACCES, which a root process with NET_ADMIN gets only from an LSM (SELinux, AppArmor).
      sig('eacces-not-eperm', /ip6?tables(?:-save|-restore)? v1\.\d{1,2}\.\d{1,2} \(legacy\): [^\n]{0,80}Permission denied(?! \(you must be root\))/, 0.55),
    ],
    explanation:
      'SELinux blocked iptables inside the container. Two known shapes: Istio before 1.18 wrote the rules to a ' +
      '/tmp file and ran `iptables-restore <file>`, which the `iptables_t` domain may not open on RHEL 9/CentOS 9; ' +
      'and the `container_t` domain may not trigger kernel module autoload (`module_request`), so the first rule ' +
      'that needs `ipt_REDIRECT`/`xt_owner` fails and later runs hit "Chain already exists".',
    fix: [
      "Confirm on the node: `ausearch -m AVC -ts recent | grep -E 'iptables|xtables'`.",
      'Upgrade Istio to 1.18+, which pipes the rules through stdin (#43945); meshcap always uses stdin.',
      'For `module_request` denials preload the modules on the node (`modprobe ...` in /etc/modules-load.d/ or a node-prep DaemonSet) so nothing has to be autoloaded from a container.',
      "Install the distribution's container-selinux policy update; as a last resort run only the capture init with `securityContext.seLinuxOptions.type: spc_t`. On OpenShift prefer istio-cni (OSSM).",
      'Do not switch nodes to permissive; if a rule is really needed, build a targeted module with `audit2allow -M`.',
    ],
    references: [
      'https://github.com/istio/istio/issues/42485',
      'https://github.com/istio/istio/issues/24101',
      'https://github.com/istio/istio/issues/4500',
      'https://github.com/linkerd/linkerd2/issues/7767',
    ],
  },
  {
    id: 'cni-not-applied',
    title: 'The CNI plugin never configured this pod (not invoked, or raced)',
    signatures: [
      // The validator listens on 15001/15006 and dials 127.0.0.6:15002: "refused" means nothing redirected it.
      sig('istio-validator-refused', /Error connecting to (?:127\.0\.0\.6|\[?::6\]?):15002[^\n]{0,120}connection refused/, 0.8, { group: 'probe-unredirected' }),
      sig('probe-refused', /127\.0\.0\.6:15002[^\n]{0,80}(?:Connection|connection) refused/, 0.75, { group: 'probe-unredirected' }),
      sig('istio-validator-started', /Starting iptables validation|in new validator: /, 0.3),
      sig('validation-verdict', /iptables validation failed; workload is not ready for Istio|\bvalidation timeout\b|LinkerdCNINotConfigured/, 0.4, { with: ['probe-unredirected'] }),
      sig('linkerd-validator-not-redirected', /Failed to validate networking configuration|Unable to connect to validator/, 0.8, { group: 'probe-unredirected' }),
      sig('plugin-not-found', /failed to find plugin "(?:istio-cni|linkerd-cni|kuma-cni|consul-cni)" in path/, 0.9),
      sig('multus-conf-dir', /\/etc\/cni\/multus\/net\.d|multus/i, 0.35, { with: ['cni'] }),
      sig('cni-conf-overwritten', /(?:CNI|cni) config(?:uration)? (?:file )?[^\n]{0,60}(?:was )?(?:overwritten|removed|rewritten|changed)/, 0.5, { with: ['cni'] }),
      sig('cni-uninitialized-taint', /cni\.istio\.io\/uninitialized|istio-cni-node[^\n]{0,60}not ready/, 0.45),
      sig('cni-not-ready-node', /(?:linkerd-cni|istio-cni-node|kuma-cni)[^\n]{0,80}(?:ContainerCreating|Pending|CrashLoopBackOff|not running)/, 0.4),
    ],
    explanation:
      'In CNI mode nothing in the pod installs the rules: the runtime calls the mesh CNI plugin when it creates the ' +
      "pod sandbox, and the pod's init container only checks the result. The check connected to a port the rules " +
      'should have redirected and was not redirected (refused, or timed out towards 1.1.1.1:20001 for Linkerd), so ' +
      'the plugin never ran for this pod: it is not in the CNI chain the runtime reads (wrong cniConfDir/cniBinDir, ' +
      'Multus or a non-chained primary CNI such as Cilium in exclusive mode), the primary CNI restarted and rewrote the ' +
      'config without the mesh plugin, or the pod was created on a fresh node before the mesh CNI agent installed ' +
      'itself (the startup race). Rules are absent, not wrong.',
    fix: [
      "Check the mesh CNI agent on the pod's node: `kubectl -n istio-system logs ds/istio-cni-node -c install-cni` (or `-n linkerd-cni ds/linkerd-cni`, kuma-cni), then the conf file the runtime reads: `ls /etc/cni/net.d` and that its first file lists the mesh plugin.",
      'Match the runtime\'s directories: istio-cni `values.cni.cniBinDir`/`cniConfDir` (GKE: /home/kubernetes/bin; OpenShift/Multus: /var/lib/cni/bin and /etc/cni/multus/net.d with `chained: false` and the `k8s.v1.cni.cncf.io/networks: istio-cni` annotation); Linkerd `destCNINetDir`/`destCNIBinDir`.',
      'With Cilium set `cni.exclusive=false` so it stops deleting other plugins\' configs; with a primary CNI that rewrites its conf on restart, let the mesh agent watch and re-insert (istio-cni does; restart linkerd-cni after the primary).',
      'For the startup race, delete the affected pod after the agent is ready, and prevent it: istio `cni.repair.enabled=true` (deletePods), Linkerd cni-repair-controller, or a node taint removed when the agent is ready.',
    ],
    references: [
      'https://github.com/istio/istio/issues/21266',
      'https://github.com/istio/istio/issues/23457',
      'https://github.com/istio/istio/issues/48734',
      'https://github.com/linkerd/linkerd2/issues/11325',
      'https://github.com/linkerd/linkerd2/issues/11735',
    ],
  },
  {
    id: 'validation-failed',
    title: 'The CNI validation found that traffic is not redirected',
    signatures: [
      sig('istio-validation-failed', /iptables validation failed; workload is not ready for Istio/, 0.95, { unless: ['probe-unredirected'] }),
      sig('error-connecting-15002', /Error connecting to (?:127\.0\.0\.6|\[?::6\]?):15002/, 0.9, { unless: ['probe-unredirected'] }),
      sig('validation-timeout', /\bvalidation timeout\b/, 0.7, { unless: ['probe-unredirected'] }),
      sig('probe-15002-refused', /127\.0\.0\.6:15002[^\n]{0,80}(?:Connection|connection) refused/, 0.75, { unless: ['probe-unredirected'] }),
      sig('linkerd-cni-not-configured', /LinkerdCNINotConfigured/, 0.9, { unless: ['probe-unredirected'] }),
      sig('linkerd-validator-failed', /Failed to validate networking configuration/, 0.85, { unless: ['probe-unredirected'] }),
      sig('kuma-validation-failed', /most likely the transparent proxy is not established correctly/, 0.9, { unless: ['probe-unredirected'] }),
      sig('cni-uninitialized', /cni\.istio\.io\/uninitialized/, 0.5, { unless: ['probe-unredirected'] }),
      sig('consul-tproxy-waiting', /transparent-proxy-status"?:? ?"?waiting/, 0.5, { unless: ['probe-unredirected'] }),
      sig('validator-exit-code', /Exit Code:\s{1,20}(?:126|95)\b/, 0.45, { with: ['cni'], unless: ['probe-unredirected'] }),
    ],
    explanation:
      "In CNI mode the pod's init container does not install rules; it only checks them (istio-validation, " +
      'linkerd-network-validator, kuma-validation). The check connected to a test address that should have been ' +
      "redirected back to it and was refused or timed out, so the CNI plugin never configured this pod's network " +
      "namespace: the plugin is not installed in the runtime's CNI configuration (wrong cniBinDir/cniConfDir, " +
      'chained vs Multus), or the pod was scheduled before the CNI agent on that node was ready.',
    fix: [
      "Check the CNI agent on the pod's node: `kubectl -n istio-system logs ds/istio-cni-node` (or linkerd-cni / kuma-cni), and that its cniBinDir/cniConfDir match the container runtime (OpenShift with Multus: /var/lib/cni/bin and /etc/cni/multus/net.d).",
      "For the startup race, let the repair controller delete such pods (`cni.repair.enabled=true`, `cni.repair.deletePods=true`; Linkerd's cni-repair-controller) or taint nodes until the CNI agent is ready, then delete the pod.",
      'Verify inside the pod netns that the rules exist: `nsenter -t <pid> -n iptables-save` (and the legacy/nft twin).',
      'If CNI cannot be fixed quickly, go back to an init container that installs the rules itself (`meshcap apply` in place of istio-init).',
    ],
    references: [
      'https://github.com/istio/istio/issues/21266',
      'https://github.com/istio/istio/issues/23457',
      'https://github.com/istio/istio/issues/33986',
      'https://github.com/linkerd/linkerd2/issues/2970',
      'https://github.com/kumahq/kuma/issues/4560',
    ],
  },
  {
    id: 'tproxy-route-exists',
    title: 'TPROXY policy routing already exists in the pod netns',
    signatures: [
      sig('netlink-rule-file-exists', /failed to configure netlink rule: file exists/i, 0.95, { group: 'file-exists' }),
      sig('rule-file-exists', /\b(?:ip|netlink) (?:rule|route)[^\n]{0,80}file exists/i, 0.8, { group: 'file-exists' }),
      sig('rtnetlink-file-exists-tproxy', /RTNETLINK answers: File exists/, 0.9, { group: 'file-exists', with: ['tproxy'] }),
      sig('rtnetlink-file-exists', /RTNETLINK answers: File exists/, 0.55, { group: 'file-exists' }),
    ],
    explanation:
      'TPROXY mode adds policy routing: `ip rule add fwmark 1337 lookup 133` and `ip route add local default dev lo ' +
      "table 133` (and the IPv6 twins). They already exist in this pod's namespace (the init ran before, or " +
      "another component uses the same mark/table), and the add refuses with \"File exists\": istio's netlink rule " +
      'add uses NLM_F_EXCL and does not ignore EEXIST, so a TPROXY re-run fails even where the iptables step was a ' +
      'no-op. With the `ip` command the rule is silently added twice instead.',
    fix: [
      'Use `meshcap apply`, which checks the existing rules and routes before adding them.',
      'Recreate the pod for a fresh netns, or clean up by hand in the pod netns: `ip rule del fwmark 1337 lookup 133`, `ip route flush table 133`, and `ip -6 rule del fwmark 1337 lookup 133`, `ip -6 route flush table 133`.',
      'If something else already uses mark 1337 or table 133, pick others with `ISTIO_INBOUND_TPROXY_MARK` / `ISTIO_INBOUND_TPROXY_ROUTE_TABLE` (`-t` / `-r`).',
      'Use REDIRECT mode unless you need the original source address.',
    ],
    references: [
      'https://github.com/istio/istio/issues/30385',
      'https://github.com/istio/istio/issues/25849',
      'https://github.com/istio/istio/issues/58135',
    ],
  },
  {
    id: 'invalid-config',
    title: 'A capture setting (port, CIDR, interface, flag) is invalid',
    signatures: [
      sig('invalid-port', /invalid port\/service `[^'`\n]{0,60}' specified/, 0.85),
      sig('invalid-mask', /invalid mask `[^'`\n]{0,20}' specified/, 0.85),
      sig('host-network-not-found', /host\/network `[^'`\n]{0,100}' not found/, 0.8),
      sig('ifnamsiz', /must be shorter than IFNAMSIZ/, 0.85),
      sig('outbound-exclude-wildcard', /invalid value for OUTBOUND_IP_RANGES_EXCLUDE/, 0.95),
      // istio-iptables drops a CIDR it cannot parse and goes on: the capture silently differs from what was asked.
      sig('bug-compat-ignored-cidr', /Ignoring error for bug compatibility[^\n]{0,120}(?:invalid CIDR|invalid IP|ParseCIDR|mask)/i, 0.75, { group: 'bug-compat' }),
      sig('bug-compat-ignored', /Ignoring error for bug compatibility/, 0.55, { group: 'bug-compat' }),
      sig('force-binary-invalid', /FORCE_IPTABLES_BINARY[^\n]{0,80}(?:invalid|must be|unsupported)|invalid[^\n]{0,60}FORCE_IPTABLES_BINARY/i, 0.8),
      sig('parse-prefix', /ParsePrefix\("[^"\n]{0,80}"\): /, 0.75),
      sig('loopback-cidr-invalid', /ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR[^\n]{0,80}(?:invalid|must)/i, 0.75),
      sig('owner-groups-limit', /OWNER_GROUPS[^\n]{0,80}(?:64|too many)/, 0.6),
      sig('unknown-flag', /Error: unknown (?:shorthand )?flag:? /, 0.7),
      sig('cobra-invalid-argument', /invalid argument "[^"\n]{0,80}" for "[^"\n]{1,60}" flag/, 0.8),
      sig('bad-argument', /Bad argument `[^'`\n]{0,80}'/, 0.6),
      sig('injector-denied', /admission webhook "[^"\n]{1,100}sidecar-injector\.istio\.io" denied the request/, 0.75),
      sig('traffic-annotation-invalid', /(?:invalid|failed to parse|bad)[^\n]{0,80}traffic\.sidecar\.istio\.io\/|traffic\.sidecar\.istio\.io\/[A-Za-z]{1,40}[^\n]{0,80}(?:invalid|failed to parse)/i, 0.75),
    ],
    explanation:
      'A value in the capture configuration is not valid: a port outside 1-65535 or a port list where one port is ' +
      'expected, a CIDR without a prefix length or with a bad mask, an interface name longer than 15 characters, ' +
      '`*` in the exclude-CIDR list, a removed or misspelled flag. istio-iptables does not check ports and ' +
      'interface names itself, so they surface as an iptables-restore error with a line number.',
    fix: [
      'Find the offending value in the error (the quoted port, mask, address or interface) and trace it to its source: pod annotations `traffic.sidecar.istio.io/{include,exclude}{Inbound,Outbound}Ports`, `...IPRanges`, `excludeInterfaces`, or mesh-wide `global.proxy.*` values.',
      'Ports: integers 1-65535, comma separated, no spaces or ranges; CIDRs: `a.b.c.d/len` (a bare IP is rejected); interfaces: at most 15 characters; `excludeOutboundIPRanges` cannot be `*`.',
      'Custom istio-init args copied from an old release may carry removed flags (`-f/--restore-format` went away in 1.24): drop them or use the injected defaults.',
      "Check the rendered init arguments with `kubectl get pod <pod> -o jsonpath='{.spec.initContainers[0].args}'`, then try them with `meshcap apply --dry-run <args>`, which parses and renders without touching the kernel.",
    ],
    references: [
      'https://github.com/istio/istio/issues/24722',
      'https://github.com/istio/istio/pull/53066',
      'https://github.com/kumahq/kuma/issues/10799',
    ],
  },
  {
    id: 'proxy-not-ready',
    title: 'The application started before the sidecar proxy was ready',
    signatures: [
      sig('pilot-agent-wait-timeout', /timeout waiting for Envoy proxy to become ready/, 0.9),
      sig('post-start-hook-wait', /FailedPostStartHook[^\n]{0,200}pilot-agent|pilot-agent wait[^\n]{0,80}exited with/, 0.8),
      sig('envoy-not-ready', /Envoy proxy is NOT ready/, 0.6),
      sig('readiness-15021', /(?:Readiness|Startup) probe failed: [^\n]{0,60}(?:15021|statuscode: 503)/, 0.45, { with: ['sidecar'] }),
      sig('app-connection-refused-sidecar', /(?:dial tcp|connect(?:ion)? to|connect\(|Failed to connect to)[^\n]{0,120}(?:connection refused|Connection refused|Couldn't connect to server)/, 0.55, {
        group: 'app-refused',
        with: ['sidecar', 'mesh-chain-create'],
      }),
      sig('app-connection-refused', /(?:dial tcp|connect to|Failed to connect to)[^\n]{0,120}(?:connection refused|Connection refused|Couldn't connect to server)/, 0.3, {
        group: 'app-refused',
      }),
      sig(
        'econnrefused-sidecar',
        /ECONNREFUSED|ConnectException: Connection refused|Connection refused \(os error 111\)|\[Errno 111\] Connection refused/,
        0.5,
        { group: 'app-refused', with: ['sidecar'] },
      ),
      sig('curl-couldnt-connect', /curl: \(7\) Failed to connect to/, 0.55, { group: 'app-refused', with: ['mesh-chain-create', 'sidecar'] }),
    ],
    explanation:
      'The capture rules were already in place when the application started, but the sidecar proxy was not yet ' +
      "listening or had no configuration, so the application's first connections were redirected to a port " +
      'nobody answered (connection refused, 503s). Kubernetes starts regular containers in parallel; without an ' +
      'ordering guarantee the app can win the race, and apps that exit on their first failed connection then ' +
      'crash-loop.',
    fix: [
      "Istio: set `holdApplicationUntilProxyStarts: true` (mesh-wide in `meshConfig.defaultConfig`, or per pod with the annotation `proxy.istio.io/config: '{\"holdApplicationUntilProxyStarts\": true}'`).",
      "Or use native sidecars (Kubernetes 1.29+): annotate `sidecar.istio.io/nativeSidecar: \"true\"` (or `ENABLE_NATIVE_SIDECARS=true` on istiod); the app then starts only after the proxy's startup probe passes.",
      'Linkerd: keep `config.linkerd.io/proxy-await: enabled`; Kuma: `kuma.io/wait-for-dataplane-ready: "true"`.',
      'Make the application retry its first connections with backoff instead of exiting.',
      'If the proxy never gets ready ("Envoy proxy is NOT ready: config not received from XDS server"), fix its connection to istiod first.',
    ],
    references: [
      'https://github.com/istio/istio/issues/11130',
      'https://github.com/istio/istio/issues/19378',
      'https://github.com/istio/istio/pull/24737',
      'https://github.com/istio/istio/issues/41086',
    ],
  },
  {
    id: 'sidecar-blocks-job-completion',
    title: "The Job's work finished but the sidecar keeps the pod running",
    signatures: [
      sig('job-pod-notready', /\s1\/2\s{1,30}NotReady\s/, 0.8, { group: 'notready', with: ['job'] }),
      sig('pod-notready', /\s1\/2\s{1,30}NotReady\s/, 0.3, { group: 'notready' }),
      // Older kubectl shows a Job pod whose app exited and whose sidecar runs as 1/2 Running.
      sig('job-pod-1of2-running', /\s1\/2\s{1,30}Running\s/, 0.55, { group: 'notready', with: ['job'] }),
      sig('pods-statuses-running-none-succeeded', /Pods Statuses:\s{1,20}[1-9]\d{0,4} (?:Active|Running) (?:\([^)\n]{0,40}\) )?\/ 0 Succeeded/, 0.55, { group: 'job-status' }),
      sig('helm-hook-timeout', /failed (?:pre|post)-(?:install|upgrade|rollback|delete): (?:timed out waiting for the condition|job failed: DeadlineExceeded)/, 0.55, { with: ['sidecar', 'mesh-init'] }),
    ],
    explanation:
      'The pod belongs to a Job (or CronJob). Its application container exited successfully, but the sidecar ' +
      'proxy, an ordinary long-running container, does not know the work is done and keeps running, so the pod ' +
      'stays `NotReady` (1/2) and the Job never completes; CronJobs then pile up pods or skip runs.',
    fix: [
      'Use native sidecars (Kubernetes 1.29+): with `sidecar.istio.io/nativeSidecar: "true"` the proxy is injected as an init container with `restartPolicy: Always`, which the kubelet stops once the main containers exit.',
      'Or stop the proxy from the job itself as its last step: `pilot-agent request POST quitquitquit` (or `curl -fsS -X POST http://localhost:15020/quitquitquit`); Linkerd: `linkerd-await --shutdown -- <cmd>` or `curl -X POST http://localhost:4191/shutdown` with `config.linkerd.io/proxy-admin-shutdown: enabled`.',
      'If the job does not need the mesh, do not inject it: label the pod template `sidecar.istio.io/inject: "false"`.',
    ],
    references: [
      'https://github.com/istio/istio/issues/11045',
      'https://github.com/istio/istio/issues/6324',
      'https://github.com/istio/istio/issues/19072',
      'https://github.com/istio/istio/issues/23412',
      'https://github.com/istio/istio/issues/19567',
    ],
  },
  {
    id: 'init-container-blocked',
    title: "An application init container needs the network while capture is on and no proxy runs",
    signatures: [
      sig('vault-env-refused', /app=vault-env[^\n]{0,200}(?:connection refused|i\/o timeout)|failed to request new Vault token[^\n]{0,200}(?:connection refused|i\/o timeout)/, 0.6, { group: 'init-net' }),
      sig('vault-agent-init-refused', /auth\.handler: error authenticating[^\n]{0,200}(?:connection refused|i\/o timeout)/, 0.45, { group: 'init-net', with: ['app-init-container', 'sidecar', 'mesh-init'] }),
      sig('init-logs-refused', /(?:connection refused|Connection refused|i\/o timeout|Connection timed out)/, 0.5, {
        group: 'init-net',
        with: ['app-init-container'],
        // The kubelet pulling an image is not the init container talking.
        notOnLine: /pull|registry|ImagePull|15002|webhook/i,
      }),
      sig('waiting-pod-initializing', /is waiting to start: PodInitializing/, 0.25, { with: ['app-init-container'] }),
      sig('stuck-init-progress', /\sInit:[1-9]\d{0,1}\/\d{1,2}\s/, 0.3, { with: ['app-init-container'] }),
    ],
    explanation:
      'Init containers run one after another before any regular container. With an init-container capture ' +
      '(istio-init, linkerd-init) followed by the application\'s own init containers, or in any CNI mode, the ' +
      'redirect rules are already in place while those init containers run, but the proxy is a regular container ' +
      'and has not started yet: every outbound connection of the init container is redirected to 15001 (4140 for ' +
      'Linkerd) where nothing listens, and it is refused or times out. holdApplicationUntilProxyStarts does not help: ' +
      'it orders regular containers only.',
    fix: [
      'Run that init container as the proxy uid, which the rules exempt: `securityContext.runAsUser: 1337` (Istio) or `2102` (Linkerd).',
      'Or exclude what it talks to: `traffic.sidecar.istio.io/excludeOutboundIPRanges` / `excludeOutboundPorts` (e.g. 8200 for Vault, 443 for the API server); Linkerd `config.linkerd.io/skip-outbound-ports`.',
      'Or use native sidecars (Kubernetes 1.29+): Istio `sidecar.istio.io/nativeSidecar: "true"` / `ENABLE_NATIVE_SIDECARS=true`, Linkerd `config.alpha.linkerd.io/proxy-enable-native-sidecar: "true"`; the proxy then starts before later init containers.',
      'Vault agent: set `vault.hashicorp.com/agent-init-first: "true"` so it runs before the capture init (init-container mode only).',
    ],
    references: [
      'https://github.com/istio/istio/issues/23802',
      'https://github.com/linkerd/linkerd2/issues/4758',
      'https://github.com/linkerd/linkerd2/issues/8100',
      'https://github.com/istio/istio/issues/43324',
    ],
  },
  {
    id: 'control-plane-unready',
    title: 'The sidecar is unready for control-plane reasons; the capture is not at fault',
    signatures: [
      sig('config-not-received', /config not received from (?:Pilot|XDS server)|Envoy proxy is NOT ready: cds updates: 0 successful/, 0.8, { group: 'xds' }),
      sig('lds-rejected', /Envoy proxy is NOT ready[^\n]{0,120}lds updates: \d{1,5} successful, [1-9]\d{0,4} rejected/, 0.75, { group: 'xds' }),
      sig('xds-stream-closed', /(?:StreamAggregatedResources|ADS) gRPC config stream (?:to [^\s]{1,100} )?closed|gRPC config stream closed: \d{1,2}/, 0.6, { group: 'xds-stream' }),
      sig('xds-dial', /(?:connection error|transport: Error while dialing)[^\n]{0,160}(?:istiod|istio-pilot|:15012|:15010)/, 0.7, { group: 'xds-stream' }),
      sig('token-file', /failed to read token file|istio-token[^\n]{0,60}(?:permission denied|no such file)/, 0.85, { group: 'auth' }),
      sig('xds-unauthenticated', /code = Unauthenticated|authentication failure|failed to create upstream grpc client/, 0.6, { group: 'auth' }),
      sig('istio-csr-failed', /failed to sign CSR|CSR signing failed|failed to generate workload certificate|cannot fetch certificate/i, 0.75, { group: 'cert' }),
      sig('linkerd-identity', /Failed to (?:certify|obtain) identity|linkerd_proxy_identity_client|identity:controller\{[^\n]{0,200}Failed to connect/, 0.8, { group: 'cert' }),
      sig('linkerd-control-addr', /connect error to ControlAddr|linkerd-(?:identity|destination)[^\n]{0,120}(?:request timed out|Connection refused|connection refused)/, 0.7, { group: 'linkerd-control' }),
      sig('unknown-issuer', /UnknownIssuer|certificate signed by unknown authority|x509: certificate has expired/, 0.4, { group: 'cert-detail', with: ['sidecar'], unless: ['webhook-call'] }),
      sig('fail-fast', /service in fail-fast/, 0.6),
      sig('dataplane-token', /could not parse token|token doesn't belong to a valid user|dataplane token[^\n]{0,60}(?:invalid|expired|missing)/, 0.65, { group: 'auth' }),
      sig('consul-acl', /ACL not found|Permission denied: token with AccessorID|Unable to (?:read|login)[^\n]{0,40}ACL|rpc error making call: ACL/, 0.4, { group: 'consul-acl', with: ['mesh-init', 'sidecar'] }),
      // Consul's HTTP API answer to a token it does not know; consul-k8s init containers retry on it forever.
      sig('consul-acl-not-found', /Unexpected response code: 403 \(ACL not found\)|Unexpected response code: 403 \(Permission denied/, 0.6, { group: 'consul-acl' }),
      sig('consul-agent-unreachable', /(?:consul|Consul)[^\n]{0,80}(?::8500|:8502)[^\n]{0,80}(?:connection refused|i\/o timeout)/, 0.55),
      sig('kuma-cp-unreachable', /(?:kuma-control-plane|:5678)[^\n]{0,120}(?:connection refused|i\/o timeout|no such host)/, 0.5, { with: ['sidecar'] }),
    ],
    explanation:
      'The proxy started and the capture is working; what is missing is the control plane. The sidecar never got ' +
      'its configuration (xDS from istiod, the Linkerd destination service, the Kuma control plane, the Consul agent) ' +
      'or never got its workload identity (the projected service-account token was unreadable, istiod rejected it, the ' +
      "Linkerd identity issuer does not chain to the trust anchor, a Consul ACL token is missing), so it stays unready. " +
      'Changing the iptables rules will not help.',
    fix: [
      'Look at the control plane, not the pod netns: `istioctl proxy-status`, `kubectl -n istio-system logs deploy/istiod` (Linkerd: `linkerd check --proxy`, `kubectl -n linkerd logs deploy/linkerd-identity`; Consul: the consul-dataplane / agent logs and ACL tokens; Kuma: `kumactl inspect dataplanes`).',
      'If the token file is unreadable, do not override the proxy\'s uid/fsGroup (the projected istio-token must be readable by 1337); on old clusters without third-party JWTs set `global.jwtPolicy=first-party-jwt`.',
      'If identities are rejected (UnknownIssuer, expired), re-issue the issuer certificate from the current trust anchor (Linkerd) or fix the CA plugin secret (Istio `cacerts`), then restart the proxies.',
      'If istiod is unreachable, check the Service and NetworkPolicies for 15012/15010 and DNS for istiod.istio-system.svc from the pod.',
    ],
    references: [
      'https://github.com/istio/istio/issues/32825',
      'https://github.com/istio/istio/issues/13939',
      'https://github.com/linkerd/linkerd2/issues/11156',
      'https://github.com/linkerd/linkerd2/issues/10830',
    ],
  },
  // meshcap's own CNI mode (src/cni): the plugin's errors as containerd prints them
  // (`plugin type="meshcap-cni" failed (add): <msg>; cause: ...; fix: ...`) and the node agent's log lines.
  {
    id: 'cni-api-unavailable',
    title: "The mesh CNI plugin could not read the pod from the API server (sandbox retried)",
    signatures: [
      sig('meshcap-cni-api-lookup', /meshcap-cni"? failed \((?:add|check)\): cannot read pod [^\n]{1,200}from the API server \(try again later\)/, 0.95, { group: 'cni-api' }),
      sig('meshcap-cni-no-kubeconfig', /no kubeconfig at [^\n]{1,200}, and the runtime passed no pod annotations/, 0.9, { group: 'cni-api' }),
      sig('meshcap-cni-kubeconfig-bad', /the kubeconfig [^\n]{1,200}(?:cannot be parsed|names no API server)/, 0.85, { group: 'cni-api' }),
      sig('meshcap-cni-uid-mismatch', /but the sandbox is for uid [^\n]{1,80}\(a re-created pod of the same name\)/, 0.6),
      sig('meshcap-cni-api-attempt', /meshcap-cni: API lookup attempt \d{1,4} failed: /, 0.5),
      sig('peer-cni-unauthorized', /plugin type="(?:istio-cni|linkerd-cni|kuma-cni|consul-cni)" failed \(add\): [^\n]{0,120}Unauthorized/, 0.85, { group: 'cni-api' }),
      sig('peer-cni-localhost-8080', /plugin type="(?:istio-cni|linkerd-cni|kuma-cni|consul-cni)" failed \(add\): [^\n]{0,200}http:\/\/localhost:8080\//, 0.85, { group: 'cni-api' }),
    ],
    explanation:
      'The runtime passed no pod annotations to the mesh CNI plugin (a runtime without the ' +
      '`io.kubernetes.cri.pod-annotations` capability, or Multus in between), so the plugin had to read the pod from ' +
      'the API server and could not: the node agent has not written its kubeconfig yet, the token it names is ' +
      'expired or revoked (401 Unauthorized), the API server is unreachable from the node, or the pod found has ' +
      "another UID (re-created under the same name). meshcap-cni then fails the sandbox with CNI code 11 (try again " +
      "later) and the kubelet retries; it never starts a mesh pod uncaptured. For istio-cni, `localhost:8080` means " +
      'its kubeconfig was missing and client-go fell back to its default.',
    fix: [
      'Check the agent on the node: `kubectl -n meshcap-system get pods -l app.kubernetes.io/name=meshcap-cni-node -o wide` and its log; it writes /var/run/meshcap-cni/kubeconfig with a `tokenFile` it refreshes.',
      "On 401, restart the node's agent pod so it copies a fresh service-account token; check the ClusterRole `meshcap-cni` (get pods) is bound to its service account.",
      'Better: let the runtime pass the annotations (containerd >= 1.5 or CRI-O, with the entry `meshcap cni install` writes, which declares the capability); then no API call is made at all.',
      'For istio-cni: restart istio-cni-node so it rewrites its kubeconfig (istio#38077, #54303).',
    ],
    references: [
      'https://github.com/istio/istio/issues/38077',
      'https://github.com/istio/istio/issues/54303',
      'https://github.com/istio/istio/issues/17583',
    ],
  },
  {
    id: 'cni-node-config',
    title: "The node's CNI configuration does not (or wrongly) chain the mesh plugin",
    signatures: [
      sig('meshcap-cni-not-found', /failed to find plugin "meshcap-cni" in path/, 0.95),
      sig('agent-no-entry', /meshcap cni agent [a-z]{1,5}: not ready: [^\n]{0,200}has no meshcap-cni entry/, 0.9, { group: 'entry' }),
      sig('agent-entry-twice', /also holds a meshcap-cni entry|has \d{1,3} meshcap-cni entries/, 0.85, { group: 'twice' }),
      sig('agent-entry-not-last', /the meshcap-cni entry is not last|the meshcap-cni entry does not declare/, 0.8, { group: 'entry' }),
      sig('agent-binary-missing', /meshcap cni agent [a-z]{1,5}: not ready: [^\n]{0,200}meshcap-cni is missing/, 0.85),
      sig('agent-binary-differs', /meshcap-cni is not the plugin this agent ships/, 0.7),
      sig('agent-no-config', /no network config in [^\n]{1,200}\(the primary CNI has not written one yet\)|meshcap never creates one/, 0.7),
      sig('agent-reinserted', /was rewritten without the meshcap-cni entry: re-inserted it/, 0.6, { group: 'fight' }),
      sig('agent-config-fight', /config fight: [^\n]{1,200}lost the meshcap-cni entry/, 0.9, { group: 'fight' }),
      sig('install-config-invalid', /meshcap cni: [^\n]{1,200}(?:is not valid JSON|is not a network config)[^\n]{0,120}nothing was changed/, 0.85),
    ],
    explanation:
      'The container runtime reads only the first network config in its conf dir (containerd: max_conf_num = 1; ' +
      'files sorted by name). That file must chain meshcap-cni last, once, and the executable must be in the ' +
      'runtime\'s bin dir. Here it does not: the entry is missing (the primary CNI rewrote its file, or a new file now ' +
      'sorts first), a config names meshcap-cni but the executable is gone (which blocks every pod on the node, DEL ' +
      'included: pods stuck Terminating), the entry is in two configs (a runtime or Multus reading both captures ' +
      'twice), or the primary CNI keeps rewriting the file (a config fight).',
    fix: [
      'Look at the node: `ls /etc/cni/net.d` (the first file in name order is the one used) and `ls -l /opt/cni/bin/meshcap-cni`; `meshcap cni install --cni-conf-dir /etc/cni/net.d --cni-bin-dir /opt/cni/bin --once` puts both right.',
      'Run the agent (deploy/cni.yaml) so the entry is re-inserted within 2 s whenever the primary CNI rewrites its file; it is Ready only while the first config holds the entry.',
      'A config fight: stop the primary CNI from owning the whole dir (Cilium: `cni.exclusive=false`), or point the runtime at a conf dir the mesh agent manages.',
      'Removing CNI mode: `meshcap cni uninstall ...` takes the entry out of every config before deleting the executable; never delete only the binary.',
    ],
    references: [
      'https://github.com/istio/istio/issues/20238',
      'https://github.com/istio/istio/issues/57432',
      'https://github.com/istio/istio/issues/55913',
      'https://github.com/istio/istio.io/issues/16748',
    ],
  },
  {
    id: 'cni-plugin-failed',
    title: 'The mesh CNI plugin failed the pod sandbox',
    signatures: [
      // With the engine's cause in the same line, the underlying cause (backend, extension, lock...) scores too and is shown first.
      sig('meshcap-cni-capture-failed', /meshcap-cni"? failed \(add\): capture not applied for pod /, 0.6),
      sig('meshcap-cni-netns', /the pod network namespace [^\n]{1,200}does not exist|cannot enter the pod network namespace/, 0.8, { group: 'netns' }),
      sig('meshcap-cni-nsenter', /'nsenter' is not on the node's PATH/, 0.9),
      sig('meshcap-cni-no-answer', /the capture step inside the pod network namespace gave no answer/, 0.8),
      sig('meshcap-cni-version', /meshcap-cni does not support cniVersion|config version does not allow CHECK/, 0.85),
      sig('meshcap-cni-stdin', /the network configuration on stdin is not (?:JSON|a JSON object)/, 0.85),
      sig('meshcap-cni-env', /meshcap-cni"? failed \([a-z]{1,6}\): (?:CNI_[A-Z]{1,20} is not set|unknown CNI_ARGS key|unknown CNI_COMMAND)/, 0.85),
      sig('meshcap-cni-check', /CHECK failed for pod [^\n]{1,200}(?:capture is missing|differs from the one the pod annotations ask for|more than one backend)/, 0.85),
      sig('meshcap-cni-unexpected', /meshcap-cni failed unexpectedly/, 0.7),
      sig('meshcap-cni-entry-invalid', /meshcap-cni's entry has an invalid /, 0.85),
      sig('meshcap-cni-status', /meshcap-cni"? failed \(status\): cannot serve ADD: /, 0.85),
    ],
    explanation:
      'meshcap-cni, chained after the primary CNI, failed while the runtime created the pod sandbox, so the pod ' +
      'stays ContainerCreating and the kubelet retries (fail closed: a mesh pod never starts uncaptured). The ' +
      "message after `failed (add):` says what failed, then the plugin's cause and fix: the capture could not be " +
      "applied in the pod netns (the engine's own error follows, e.g. a missing kernel table or extension), the " +
      "netns was already gone, the node lacks `nsenter`, or the runtime called it with a config version or " +
      'environment it does not accept. CHECK failures (CRI-O, OpenShift) mean the live rules are missing or differ ' +
      'from what the pod annotations ask for.',
    fix: [
      "Read the `cause:` and `fix:` after `failed (add):` in `kubectl describe pod` (FailedCreatePodSandBox) or the runtime's log (`journalctl -u containerd`); when the engine's error is quoted, its cause is listed first here.",
      'Node tools: the plugin runs the node\'s `nsenter` (util-linux) and iptables/nft; install them, or load the kernel modules (deploy/node-prep.yaml).',
      "CHECK failures: compare with `meshcap status --pid <pause pid> <the pod's istio-iptables args>`; delete the pod to get a fresh sandbox.",
      'Version or environment errors come from the runtime or a hand-made call: use a conflist `cniVersion` of 0.4.0 or later (1.0.0 is what `meshcap cni install` keeps) and a runtime that sets CNI_CONTAINERID, CNI_NETNS and CNI_IFNAME.',
    ],
    references: [
      'https://github.com/istio/istio/issues/57432',
      'https://github.com/istio/istio/issues/48746',
    ],
  },
  {
    id: 'cni-name-service',
    title: "The CNI plugin's capture waits on the node's name service, so pods start late",
    signatures: [
      // meshcap-cni's own warning: the capture ran with the node's nsswitch.conf (the reason is in the parentheses).
      sig('meshcap-cni-no-nss-sandbox', /warning: capture runs without a private mount namespace \(/, 0.7),
      // Istio #48416: OS Login's NSS/PAM module asks the metadata server, which refuses a pod that is not running yet.
      sig('oslogin-users-request', /computeMetadata\/v1\/oslogin\/users/, 0.85, { group: 'oslogin', with: ['cni'] }),
      sig('oslogin-mentioned', /\boslogin\b|guest-oslogin/i, 0.35, { group: 'oslogin', with: ['cni'] }),
      // A pasted nsswitch.conf whose users or groups come from a remote service.
      sig('nsswitch-remote-users', /^\s{0,8}(?:passwd|group):[^\n]{0,80}\b(?:ldap|sss|nis|nisplus|hesiod|winbind|oslogin|cache_oslogin)\b/, 0.5, { with: ['cni'] }),
      // The remote service itself failing, in the node's journal.
      sig(
        'nss-service-unreachable',
        /nslcd\[\d{1,7}\]: [^\n]{0,160}(?:failed to bind|no available LDAP server|timed out)|sssd(?:_be)?\[[^\]\n]{1,40}\]{1,2}: [^\n]{0,160}(?:Backend is offline|Could not connect)|nss_ldap: (?:could not|failed to) (?:connect|bind|search)/,
        0.55,
        { with: ['cni'] },
      ),
    ],
    explanation:
      'In CNI mode the capture runs from the node, inside the pod network namespace, with the node\'s files. ' +
      'iptables resolves `--uid-owner 1337` with getpwnam() even though it is numeric (libxt_owner), and nft ' +
      'resolves uids too. When the node\'s nsswitch.conf sends user lookups to a remote service (LDAP, SSSD, NIS, ' +
      'winbind, GCE OS Login), each lookup is made from inside the new pod\'s netns, where that service cannot be ' +
      'reached, and waits for its timeouts: ADD takes 30 to 60 s and the pod sits in ContainerCreating or Init:0/1 ' +
      'meanwhile. On GKE with OS Login the metadata server refuses the request because it comes from a pod that is ' +
      'not running yet, and the module retries (Istio #48416). meshcap-cni avoids all of this by running the capture ' +
      'in a private mount namespace where /etc/nsswitch.conf is /dev/null. Its warning "capture runs without a ' +
      'private mount namespace (...)" means that could not be done; the reason is in the parentheses.',
    fix: [
      "Read the reason in meshcap-cni's warning (containerd's journal: `journalctl -u containerd | grep meshcap-cni`): `'unshare' (util-linux) is not on the node's PATH` needs util-linux on the runtime's PATH; `unshare failed: Operation not permitted` or a denied `mount --bind` is an SELinux, AppArmor or seccomp policy on the CNI plugin's process that must allow creating a mount namespace and a bind mount inside it.",
      'Or take the remote service out of user and group lookups on nodes: `passwd: files` and `group: files` in /etc/nsswitch.conf (the mesh uid 1337 needs no directory). On GKE, turn OS Login off for the node pool (instance metadata `enable-oslogin=FALSE`).',
      'Istio fixed #48416 the same way (istio-iptables bind-mounts /dev/null over nsswitch.conf in its own mount namespace); an istio-cni from before that fix on such nodes: upgrade it, or use the istio-init container instead of CNI mode there.',
      'To confirm, time one ADD by hand on the node: `meshcap doctor` cannot see a delay, but `journalctl -u containerd` shows RunPodSandbox starting and returning; a gap of tens of seconds for mesh pods only points here.',
    ],
    references: [
      'https://github.com/istio/istio/issues/48416',
      'https://github.com/kumahq/kuma/issues/11038',
      'https://github.com/istio/istio/issues/23770',
    ],
  },
  {
    id: 'unknown',
    title: 'No known cause matched the input',
    signatures: [],
    explanation:
      'Nothing in the input matches a known failure of mesh traffic capture. Either the capture is healthy, or ' +
      'the evidence is not in what was pasted.',
    fix: [
      "Collect the capture init's logs, including the previous run: `kubectl logs <pod> -c istio-init` and `kubectl logs <pod> -c istio-init --previous` (or istio-validation, linkerd-init, kuma-init, consul-connect-inject-init).",
      'Collect `kubectl describe pod <pod>` (container states, exit codes, Events) and `kubectl get events -n <ns> --field-selector involvedObject.name=<pod>`.',
      'Collect the rules as both backends see them in the pod netns: `iptables-legacy-save`, `iptables-nft-save` (and the ip6tables twins) and `nft list ruleset`.',
      'Or let meshcap gather all of it: `meshcap doctor --pod <pod> -n <ns>`.',
    ],
    references: [],
  },
];

const BY_ID = new Map<CauseId, KnowledgeEntry>(KNOWLEDGE.map((entry) => [entry.id, entry]));

export function knowledgeFor(id: CauseId): KnowledgeEntry {
  const entry = BY_ID.get(id);
  if (entry === undefined) throw new Error(`no knowledge entry for cause ${id}`);
  return entry;
}
