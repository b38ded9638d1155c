/**
 * The capture engine: config -> ruleset -> backend -> reconcile -> verify ->
 * routes. The same code runs for real and, with the recording System, for
 * --dry-run (where it produces Istio's trace).
 */
import { type IptablesBinaries, PACKAGE_OF, plainBinaries } from '../backend/binaries.js';
import { type BackendSnapshot, type SnapshotHints, detectBackend, snapshotBackend } from '../backend/detect.js';
import { listNftTableNames } from '../backend/nft-read.js';
import { MESH_NFT_TABLES } from '../rules/constants.js';
import type { System } from '../backend/system.js';
import { ExitCode, MeshcapError } from '../errors.js';
import type { Logger } from '../log.js';
import type { CaptureConfig } from '../config/types.js';
import type { IdResolver } from '../render/iptables-save-form.js';
import { buildRuleset } from '../rules/build.js';
import { type Family, type Ruleset, familyLabel } from '../rules/model.js';
import { cleanIptables, type FamilyOutcome, reconcileIptables } from './iptables.js';
import { cleanNftables, reconcileNftables } from './nftables.js';
import { cleanTproxyRouting, ensureIpv6Passthrough, ensureTproxyRouting } from './routes.js';
import { preflight } from '../preflight/run.js';

export interface EngineOptions {
  readonly sys: System;
  readonly log: Logger;
  readonly resolveId?: IdResolver;
}

export interface CaptureReport {
  readonly backend: string;
  readonly reason: string;
  readonly changed: boolean;
  readonly families: readonly FamilyOutcome[];
  readonly notes: readonly string[];
}

function nftBinary(sys: System): string {
  const nft = sys.which('nft');
  if (!nft) {
    throw new MeshcapError({
      exitCode: ExitCode.Unsupported,
      what: 'native nftables is enabled, but the nft binary was not found on PATH',
      why: 'the image has no nftables tools',
      fix: `install it (Debian/Ubuntu: apt-get install ${PACKAGE_OF.nft}; Alpine: apk add nftables), or drop --native-nftables`,
    });
  }
  return nft;
}

function pinnedBy(config: CaptureConfig, env: Readonly<Record<string, string | undefined>>): string {
  return env.FORCE_IPTABLES_BINARY ? `FORCE_IPTABLES_BINARY=${config.backend}` : `--backend=${config.backend}`;
}

function requireUsable(snapshot: BackendSnapshot, reason: string, config: CaptureConfig): void {
  if (!snapshot.binaries.ipv4) {
    throw new MeshcapError({
      exitCode: ExitCode.Unsupported,
      what: `no iptables-${snapshot.variant} binaries (iptables-${snapshot.variant}-save / -restore) on PATH`,
      why: `the ${snapshot.variant} backend was chosen (${reason}) but its binaries are missing`,
      fix: `install iptables (apt-get install ${PACKAGE_OF.iptables}), or choose the other backend with --backend`,
    });
  }
  if (!snapshot.usable) {
    throw new MeshcapError({
      exitCode: ExitCode.Unsupported,
      what: `the iptables-${snapshot.variant} backend cannot read this namespace's rules`,
      why: snapshot.problem ?? 'its save command failed',
      fix: snapshot.variant === 'nft'
        ? 'the kernel may lack nf_tables; try --backend=legacy'
        : 'the kernel may lack ip_tables; try --backend=nft',
    });
  }
  if (config.ipv6.enabled && !snapshot.binaries.ipv6) {
    throw new MeshcapError({
      exitCode: ExitCode.Unsupported,
      what: `IPv6 rules are needed (${config.ipv6.reason}) but ip6tables-${snapshot.variant} binaries are missing`,
      why: 'the image ships only the IPv4 tools',
      fix: 'install the full iptables package, or run with --ipv6=false if the pod has no IPv6',
    });
  }
}

export async function runCapture(config: CaptureConfig, env: Readonly<Record<string, string | undefined>>, opts: EngineOptions): Promise<CaptureReport> {
  const { sys, log } = opts;
  // Preflight reads files only; a dry run (like Istio's) assumes a capable environment.
  const { ipv6Available } = sys.recording ? { ipv6Available: true } : preflight(config, sys, log);
  if (!ipv6Available && config.ipv6.enabled) {
    config = { ...config, ipv6: { enabled: false, reason: `${config.ipv6.reason}, but IPv6 is disabled in this namespace` } };
  }
  const ruleset = buildRuleset(config);
  return config.nativeNftables ? captureNative(config, ruleset, opts) : captureIptables(config, ruleset, env, ipv6Available, opts);
}

async function captureNative(config: CaptureConfig, ruleset: Ruleset, opts: EngineOptions): Promise<CaptureReport> {
  const { sys, log } = opts;
  const nft = nftBinary(sys);
  const report = (changed: boolean, notes: string[]): CaptureReport => ({ backend: 'nftables', reason: '--native-nftables', changed, families: [], notes });
  if (config.cleanupOnly) {
    const notes = (await cleanNftables({ sys, log, nft })).map((table) => `deleted table inet ${table}`);
    if (!sys.recording) notes.push(...(await cleanTproxyRouting(opts)));
    return report(notes.length > 0, notes);
  }
  const result = await reconcileNftables(ruleset, { sys, log, nft, force: config.forceApply });
  if (sys.recording) return report(result.changed, []);
  const notes: string[] = [];
  // Mesh rules left in an iptables backend would capture twice, or hide where the capture is.
  for (const variant of ['legacy', 'nft'] as const) {
    const snapshot = await snapshotBackend(sys, variant, result.tables ? { nftTables: result.tables } : {});
    if (snapshot.meshRules === 0) continue;
    log.warn(`removing ${snapshot.meshRules} mesh rules left in iptables-${variant}: native nftables now holds the capture`);
    await cleanIptables({ sys, log, binaries: snapshot.binaries, prefetched: snapshot.saves, lockTimeoutSeconds: config.lockTimeoutSeconds });
    notes.push(`removed mesh rules from iptables-${variant}`);
  }
  notes.push(...(await applyRoutes(config, opts)));
  return report(result.changed || notes.length > 0, notes);
}

interface Selection {
  readonly backend: string;
  readonly reason: string;
  readonly binaries: Partial<Record<Family, IptablesBinaries>>;
  readonly prefetched?: Partial<Record<Family, string>>;
  /** The other usable backend: fallback target, and where stale mesh rules are removed. */
  readonly other?: BackendSnapshot;
}

/** The backend to write to; a dry run uses Istio's plain binary names and detects nothing. */
async function selectBackend(
  config: CaptureConfig,
  env: Readonly<Record<string, string | undefined>>,
  ipv6Available: boolean,
  opts: EngineOptions,
  hints: SnapshotHints,
): Promise<Selection> {
  if (opts.sys.recording) return { backend: 'iptables', reason: 'dry run', binaries: { ipv4: plainBinaries('ipv4'), ipv6: plainBinaries('ipv6') } };
  const detection = await detectBackend(opts.sys, config.backend, pinnedBy(config, env), hints);
  if (detection.noBinaries) {
    throw new MeshcapError({
      exitCode: ExitCode.Unsupported,
      what: 'iptables was not found on PATH (looked for iptables-nft-save, iptables-legacy-save and iptables-save with their -restore)',
      why: 'the image or host has no iptables binaries',
      fix: `install the iptables package (Debian/Ubuntu: apt-get install ${PACKAGE_OF.iptables}; Alpine: apk add iptables), or use --native-nftables with nft; nothing was changed`,
    });
  }
  requireUsable(detection.chosen, detection.reason, config);
  const backend = `iptables-${detection.chosen.variant}`;
  opts.log.info(`backend ${backend}: ${detection.reason}`);
  return {
    backend,
    reason: detection.reason,
    binaries: familiesToTouch(detection.chosen, ipv6Available),
    prefetched: detection.chosen.saves,
    ...(detection.other ? { other: detection.other } : {}),
  };
}

/** With IPv6 disabled in the namespace, the IPv6 tables are not touched at all. */
function familiesToTouch(snapshot: BackendSnapshot, ipv6Available: boolean): Partial<Record<Family, IptablesBinaries>> {
  return ipv6Available ? snapshot.binaries : { ipv4: snapshot.binaries.ipv4! };
}

async function captureIptables(
  config: CaptureConfig,
  ruleset: Ruleset,
  env: Readonly<Record<string, string | undefined>>,
  ipv6Available: boolean,
  opts: EngineOptions,
): Promise<CaptureReport> {
  const { sys, log } = opts;
  // One cheap read decides the others: which nf_tables tables exist at all. Native mesh tables
  // (inet istio-proxy-*) would capture a second time; iptables-nft's save is skipped for a
  // family without any table (a fresh namespace; an IPv4-only pod's IPv6 side).
  const nft = sys.recording ? undefined : sys.which('nft');
  const nftTables = nft ? await listNftTableNames(sys, nft) : undefined;
  const selection = await selectBackend(config, env, ipv6Available, opts, nftTables ? { nftTables } : {});
  const common = { sys, log, lockTimeoutSeconds: config.lockTimeoutSeconds };

  if (config.cleanupOnly) {
    const scoped = config.ipv6.enabled ? selection.binaries : { ipv4: selection.binaries.ipv4! };
    const cleaned = await cleanIptables({ ...common, binaries: scoped, prefetched: selection.prefetched });
    const notes = [...cleaned.map((family) => `removed the ${family} mesh rules`), ...(sys.recording ? [] : await cleanTproxyRouting(opts))];
    return { backend: selection.backend, reason: selection.reason, changed: notes.length > 0, families: [], notes };
  }

  const notes: string[] = [];
  const reconcileWith = (binaries: Partial<Record<Family, IptablesBinaries>>, prefetched?: Partial<Record<Family, string>>) =>
    reconcileIptables(ruleset, { ...common, binaries, prefetched, force: config.forceApply, resolveId: opts.resolveId });
  let backend = selection.backend;
  let other = selection.other;
  let families: FamilyOutcome[];
  try {
    families = await reconcileWith(selection.binaries, selection.prefetched);
  } catch (error) {
    // The chosen backend cannot do it (table or extension missing); the other one may.
    if (!(error instanceof MeshcapError && error.otherBackendMayWork && config.backend === 'auto' && other?.usable)) throw error;
    const fallback = other;
    other = undefined;
    log.warn(`${backend} cannot apply the rules (${error.what}); falling back to iptables-${fallback.variant}. Node-level fix: ${error.fix}`);
    requireUsable(fallback, 'fallback', config);
    families = await reconcileWith(familiesToTouch(fallback, ipv6Available), fallback.saves);
    notes.push(`fell back from ${backend} to iptables-${fallback.variant}: ${error.why}`);
    // One family may have committed on the failed backend before the other failed: remove it.
    await cleanIptables({ ...common, binaries: selection.binaries }).catch((cleanError: unknown) =>
      log.warn(`could not remove partial mesh rules from ${backend}: ${(cleanError as Error).message}`),
    );
    backend = `iptables-${fallback.variant}`;
  }

  if (!sys.recording) {
    if (other && other.meshRules > 0) {
      log.warn(`iptables-${other.variant} also holds ${other.meshRules} mesh rules; removing them so the capture lives in one place (${backend})`);
      await cleanIptables({ ...common, binaries: other.binaries, prefetched: other.saves });
      notes.push(`removed stale mesh rules from iptables-${other.variant}`);
    }
    if (nft && nftTables?.some((table) => table.family === 'inet' && MESH_NFT_TABLES.includes(table.name))) {
      const removed = await cleanNftables({ sys, log, nft });
      log.warn(`removed native nftables mesh tables (${removed.join(', ')}): ${backend} now holds the capture`);
      notes.push(`removed nftables tables ${removed.join(', ')}`);
    }
    notes.push(...(await applyRoutes(config, opts)));
  }
  return { backend, reason: selection.reason, changed: families.some((f) => f.changed) || notes.length > 0, families, notes };
}

async function applyRoutes(config: CaptureConfig, opts: EngineOptions): Promise<string[]> {
  const notes: string[] = [];
  if (config.ipv6.enabled && (await ensureIpv6Passthrough(opts))) notes.push('added ::6/128 to lo');
  if (config.mode === 'TPROXY' && config.inboundPorts.kind !== 'none') {
    notes.push(...(await ensureTproxyRouting(opts, { mark: config.tproxyMark, table: config.tproxyRouteTable, ipv6: config.ipv6.enabled })));
  }
  return notes;
}

/** `meshcap clean`: every mesh chain, rule, table and TPROXY route, from every backend. */
export async function cleanEverything(opts: EngineOptions & { lockTimeoutSeconds: number }): Promise<string[]> {
  const { sys, log } = opts;
  const removed: string[] = [];
  for (const variant of ['legacy', 'nft'] as const) {
    const snapshot = await snapshotBackend(sys, variant);
    // cleanIptables finds nothing to do in a state without mesh chains or rules.
    if (!snapshot.usable) continue;
    const families = await cleanIptables({ sys, log, binaries: snapshot.binaries, prefetched: snapshot.saves, lockTimeoutSeconds: opts.lockTimeoutSeconds });
    removed.push(...families.map((family) => `iptables-${variant} ${familyLabel(family)} mesh chains and rules`));
  }
  const nft = sys.which('nft');
  if (nft) removed.push(...(await cleanNftables({ sys, log, nft })).map((table) => `nftables table inet ${table}`));
  removed.push(...(await cleanTproxyRouting(opts)));
  return removed;
}

