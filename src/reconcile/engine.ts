/**
 * The capture engine, in three steps a caller can take apart:
 *
 *   readCaptureState(config, sys, log)  reads: preflight, backend detection, nft tables
 *   planCapture(config, state)          pure: backend choice, per-family plans, nft transaction, cleanups
 *   applyCapture(plan, sys, log)        writes: restores with retries, fallback, read-back, cleanups, routes
 *
 * runCapture does all three. A dry run plans against dryRunState() and prints
 * the plan (renderDryRun in ./dry-run.ts); it never reaches applyCapture.
 */
import { type IptablesBinaries, PACKAGE_OF, plainBinaries } from '../backend/binaries.js';
import { type BackendSnapshot, type Detection, detectBackend, snapshotBackend } from '../backend/detect.js';
import { listNftTableNames, readNftListing, readNftRulesetAndTables } from '../backend/nft-read.js';
import { MESH_NFT_TABLES } from '../rules/constants.js';
import type { System } from '../backend/system.js';
import type { CaptureConfig } from '../config/types.js';
import { ExitCode, MeshcapError } from '../errors.js';
import type { Logger } from '../log.js';
import { checkCapabilities, preflight } from '../preflight/run.js';
import type { IdResolver } from '../render/iptables-save-form.js';
import { buildRuleset } from '../rules/build.js';
import { type Family, type Ruleset, familyLabel } from '../rules/model.js';
import { cleanupInput, type FamilyPlan, planFamily } from './plan.js';
import { parseSave } from '../state/iptables-save.js';
import type { NftListing, NftTableName } from '../state/nft-listing.js';
import { hasMeshTables } from '../state/nft-view.js';
import { cleanIptables, type FamilyOutcome, reconcileIptables, restoreArgs } from './iptables.js';
import { EarlyWriter } from './early-writer.js';
import { applyNftPlan, cleanNftables, NFT_APPLY_ARGS, type NftPlan, nftTablesToDelete, planNftables } from './nftables.js';
import { cleanTproxyRouting, ensureIpv6Passthrough, ensureTproxyRouting, type TproxyRouting } from './routes.js';

export interface EngineOptions {
  readonly sys: System;
  readonly log: Logger;
  readonly resolveId?: IdResolver;
  /** Waits between retries (tests pass one that does not wait). */
  readonly backoff?: () => Promise<void>;
  /** The first read, already started (startFirstRead). */
  readonly firstRead?: FirstRead;
  /** The rules' writer, already started (startEarlyWriter); the caller releases it. */
  readonly writer?: EarlyWriter;
}

/**
 * The read every capture starts with, started before the caller has validated the rest of its
 * configuration: `nft list tables` (iptables path) or `nft list ruleset` (native path).
 */
export interface FirstRead {
  readonly nft: string;
  readonly tables?: Promise<NftTableName[] | undefined>;
  readonly ruleset?: Promise<{ listing: NftListing; tables: NftTableName[] }>;
}

/**
 * Starts the capture's first read in the background. The caller then validates its configuration,
 * logs and runs its preflight while the child runs (with blocking children that work and the read
 * take about as long each); a read changes nothing, so an invalid value found afterwards still
 * leaves everything as it was. Undefined without nft: the reads then run in order.
 */
export function startFirstRead(sys: System, nativeNftables: boolean): FirstRead | undefined {
  const nft = sys.which('nft');
  if (!nft) return undefined;
  const first: FirstRead = nativeNftables
    ? { nft, ruleset: readNftRulesetAndTables(sys, nft, { background: true }) }
    : { nft, tables: listNftTableNames(sys, nft, { background: true }) };
  // readCaptureState awaits it; a caller that fails before then must not leave a rejection unhandled.
  void (first.ruleset ?? first.tables)!.catch(() => undefined);
  return first;
}

/**
 * Starts the writer a long capture will most likely use, before anything is read: on the
 * iptables path iptables-nft-restore (what a fresh namespace on an nf_tables kernel gets),
 * on the native path nft. A plan that needs another binary releases it unused.
 */
export function startEarlyWriter(sys: System, nativeNftables: boolean): EarlyWriter | undefined {
  const file = sys.which(nativeNftables ? 'nft' : 'iptables-nft-restore');
  if (!file) return undefined;
  // iptables-nft takes no xtables lock, so no lock wait bounds it: the default timeout does.
  return new EarlyWriter(sys, file, nativeNftables ? NFT_APPLY_ARGS : restoreArgs({ usesXtablesLock: false }, 0), {});
}

export interface CaptureReport {
  readonly backend: string;
  readonly reason: string;
  readonly changed: boolean;
  readonly families: readonly FamilyOutcome[];
  readonly notes: readonly string[];
}

/** What the engine reads before it decides anything. */
export interface CaptureState {
  /** IPv6 exists and is enabled in this namespace. */
  readonly ipv6Available: boolean;
  /** The nft binary, when on PATH. */
  readonly nft?: string;
  /** The live inet tables; 'unknown' when not read (a dry run). */
  readonly nftables: NftListing | 'unknown';
  /** iptables mode: the chosen backend, the other one, and why. */
  readonly detection?: Detection;
  /** Native mode: both iptables backends, whose mesh rules are removed. */
  readonly iptablesBackends?: readonly BackendSnapshot[];
}

/** Per family: the binaries, the state read, and (for a reconcile) the plan made from it. */
export interface FamilyStep {
  readonly family: Family;
  readonly binaries: IptablesBinaries;
  /** `*-save` output planned from; undefined when it could not be read ahead (applyCapture reads it). */
  readonly saved?: string;
  /** reconcile: the plan; undefined when `saved` is. */
  readonly plan?: FamilyPlan;
  /** cleanup: the restore input that removes the mesh rules ('' = nothing to remove). */
  readonly cleanupInput?: string;
}

export interface RoutePlan {
  /** `::6/128` on lo (IPv6 passthrough). */
  readonly passthroughV6: boolean;
  readonly tproxy?: TproxyRouting;
}

interface PlanBase {
  readonly ruleset: Ruleset;
  /** The config with the decisions reading made (IPv6 off when the namespace has none). */
  readonly config: CaptureConfig;
  readonly cleanupOnly: boolean;
  /** IPv6 exists in the namespace: the IPv6 tables may be touched (a fallback backend too). */
  readonly ipv6Available: boolean;
  readonly routes: RoutePlan;
}

export interface IptablesCapturePlan extends PlanBase {
  readonly kind: 'iptables';
  readonly backend: string;
  readonly reason: string;
  readonly families: readonly FamilyStep[];
  /** The other usable backend, to fall back to when the chosen one lacks a table or extension (auto only). */
  readonly fallback?: BackendSnapshot;
  /** The other backend holds mesh rules: removed once the capture is in place. */
  readonly staleBackend?: BackendSnapshot;
  /** Native nftables mesh tables to delete (they would capture a second time). */
  readonly nftTablesToDelete: readonly string[];
  readonly nft?: string;
  /** No detection was done (a dry run): the plain binaries are used and nothing else is touched. */
  readonly assumed: boolean;
}

export interface NftCapturePlan extends PlanBase {
  readonly kind: 'nftables';
  readonly nft: string;
  /** reconcile: the transaction ('' = already in place). */
  readonly transaction?: NftPlan;
  /** cleanup: the tables deleted. */
  readonly tablesToDelete: readonly string[];
  /** iptables backends holding mesh rules, which are removed. */
  readonly staleBackends: readonly BackendSnapshot[];
  readonly assumed: boolean;
}

export type CapturePlan = IptablesCapturePlan | NftCapturePlan;

function nftBinaryMissing(): MeshcapError {
  return new MeshcapError({
    exitCode: ExitCode.Unsupported,
    what: 'native nftables is enabled, but the nft binary was not found on PATH',
    why: 'the image has no nftables tools',
    fix: `install it (Debian/Ubuntu: apt-get install ${PACKAGE_OF.nft}; Alpine: apk add nftables), or drop --native-nftables`,
  });
}

function noIptables(): MeshcapError {
  return new MeshcapError({
    exitCode: ExitCode.Unsupported,
    what: 'iptables was not found on PATH (looked for iptables-nft-save, iptables-legacy-save and iptables-save with their -restore)',
    why: 'the image or host has no iptables binaries',
    fix: `install the iptables package (Debian/Ubuntu: apt-get install ${PACKAGE_OF.iptables}; Alpine: apk add iptables), or use --native-nftables with nft; nothing was changed`,
  });
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
      fix: snapshot.variant === 'nft' ? 'the kernel may lack nf_tables; try --backend=legacy' : 'the kernel may lack ip_tables; try --backend=nft',
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

/** Reads what planning needs, changing nothing. Throws (before any change) when the environment cannot work. */
export async function readCaptureState(config: CaptureConfig, sys: System, log: Logger, first?: FirstRead): Promise<CaptureState> {
  const { ipv6Available } = preflight(config, sys, log);
  const nft = sys.which('nft') ?? undefined;
  const started = first?.nft === nft ? first : undefined;
  if (config.nativeNftables) {
    if (!nft) throw nftBinaryMissing();
    // All families in one read: it also tells whether iptables-nft has any table to look at.
    const { listing: nftables, tables } = await (started?.ruleset ?? readNftRulesetAndTables(sys, nft));
    if (config.cleanupOnly) return { ipv6Available, nft, nftables };
    const iptablesBackends = await Promise.all([snapshotBackend(sys, 'legacy'), snapshotBackend(sys, 'nft', { nftTables: tables })]);
    return { ipv6Available, nft, nftables, iptablesBackends };
  }
  // One cheap read decides the others: which nf_tables tables exist at all. iptables-nft's save
  // is skipped for a family without any table (a fresh namespace; an IPv4-only pod's IPv6 side),
  // and native mesh tables (inet istio-proxy-*, which would capture a second time) are listed
  // only when present.
  const tablesRead = nft ? (started?.tables ?? listNftTableNames(sys, nft)) : undefined;
  // Detection looks the binaries up (and reads legacy's tables) while the first read may still run.
  const detecting = detectBackend(sys, config.backend, config.backendPinnedBy, tablesRead ? { nftTables: tablesRead } : {});
  // Awaited below; until then a failure must not count as unhandled.
  detecting.catch(() => undefined);
  const nftTables = await tablesRead;
  const meshTables = nftTables?.some((table) => table.family === 'inet' && MESH_NFT_TABLES.includes(table.name));
  const listing = nft && meshTables ? readNftListing(sys, nft).catch(() => new Map() as NftListing) : undefined;
  const detection = await detecting;
  // Only now is it known whether the writer is iptables-legacy, which also needs CAP_NET_RAW.
  if (detection.chosen.variant === 'legacy') checkCapabilities(sys, 'legacy', detection.reason);
  return { ipv6Available, ...(nft ? { nft } : {}), nftables: listing ? await listing : new Map(), detection };
}

/** The state a dry run plans against, like Istio's: clean, IPv6 available, the plain binary names, nothing read. */
export function dryRunState(): CaptureState {
  const binaries = { ipv4: plainBinaries('ipv4'), ipv6: plainBinaries('ipv6') };
  const assumed: BackendSnapshot = { variant: 'nft', binaries, saves: { ipv4: '', ipv6: '' }, meshRules: 0, allRules: 0, usable: true };
  return { ipv6Available: true, nft: 'nft', nftables: 'unknown', detection: { chosen: assumed, reason: 'dry run', noBinaries: false } };
}

/**
 * Decides everything from the state read. Pure; throws when the state cannot carry the config.
 * `built`: buildRuleset(config) made beforehand (runCapture makes it while the first read runs).
 */
export function planCapture(config: CaptureConfig, state: CaptureState, built?: Ruleset): CapturePlan {
  if (!state.ipv6Available && config.ipv6.enabled) {
    config = { ...config, ipv6: { enabled: false, reason: `${config.ipv6.reason}, but IPv6 is disabled in this namespace` } };
    built = undefined;
  }
  const ruleset = built ?? buildRuleset(config);
  const routes: RoutePlan = {
    passthroughV6: config.ipv6.enabled,
    ...(config.mode === 'TPROXY' && config.inboundPorts.kind !== 'none'
      ? { tproxy: { mark: config.tproxyMark, table: config.tproxyRouteTable, ipv6: config.ipv6.enabled } }
      : {}),
  };
  const base = { ruleset, config, cleanupOnly: config.cleanupOnly, ipv6Available: state.ipv6Available, routes };
  const assumed = state.detection?.reason === 'dry run';
  if (config.nativeNftables) {
    if (!state.nft) throw nftBinaryMissing();
    const live = state.nftables === 'unknown' ? new Map() : state.nftables;
    return {
      ...base,
      kind: 'nftables',
      nft: state.nft,
      assumed: state.nftables === 'unknown',
      ...(config.cleanupOnly ? {} : { transaction: planNftables(ruleset, live, config.forceApply) }),
      tablesToDelete: config.cleanupOnly ? nftTablesToDelete(state.nftables) : [],
      staleBackends: (state.iptablesBackends ?? []).filter((snapshot) => snapshot.meshRules > 0),
    };
  }
  const detection = state.detection;
  if (!detection || detection.noBinaries) throw noIptables();
  requireUsable(detection.chosen, detection.reason, config);
  const touched = familiesToTouch(detection.chosen, state.ipv6Available);
  const scoped = config.cleanupOnly && !config.ipv6.enabled ? { ipv4: touched.ipv4! } : touched;
  const families = (['ipv4', 'ipv6'] as const).flatMap((family): FamilyStep[] => {
    const binaries = scoped[family];
    if (!binaries) return [];
    const saved = detection.chosen.saves[family];
    if (saved === undefined) return [{ family, binaries }];
    if (config.cleanupOnly) return [{ family, binaries, saved, cleanupInput: cleanupInput(parseSave(saved)) }];
    return [{ family, binaries, saved, plan: planFamily(ruleset, family, parseSave(saved), { force: config.forceApply }) }];
  });
  const other = detection.other;
  return {
    ...base,
    kind: 'iptables',
    backend: assumed ? 'iptables' : `iptables-${detection.chosen.variant}`,
    reason: detection.reason,
    families,
    assumed,
    ...(other && config.backend === 'auto' && other.usable ? { fallback: other } : {}),
    ...(other && other.meshRules > 0 ? { staleBackend: other } : {}),
    nftTablesToDelete: state.nftables !== 'unknown' && hasMeshTables(state.nftables) ? nftTablesToDelete(state.nftables) : [],
    ...(state.nft ? { nft: state.nft } : {}),
  };
}

/** With IPv6 disabled in the namespace, the IPv6 tables are not touched at all. */
function familiesToTouch(snapshot: BackendSnapshot, ipv6Available: boolean): Partial<Record<Family, IptablesBinaries>> {
  return ipv6Available ? snapshot.binaries : { ipv4: snapshot.binaries.ipv4! };
}

/** Carries a plan out. Concurrent writers are met by re-reading and re-planning, family by family. */
export async function applyCapture(plan: CapturePlan, opts: EngineOptions): Promise<CaptureReport> {
  return plan.kind === 'nftables' ? applyNative(plan, opts) : applyIptables(plan, opts);
}

/** Read, plan, apply: what `meshcap apply` does. */
export async function runCapture(config: CaptureConfig, opts: EngineOptions): Promise<CaptureReport> {
  const reading = readCaptureState(config, opts.sys, opts.log, opts.firstRead);
  reading.catch(() => undefined); // awaited below
  // Built while the first read runs in the background (when it does): the rules depend on the config alone.
  const ruleset = buildRuleset(config);
  return applyCapture(planCapture(config, await reading, ruleset), opts);
}

async function applyNative(plan: NftCapturePlan, opts: EngineOptions): Promise<CaptureReport> {
  const { sys, log } = opts;
  const nftOpts = { sys, log, nft: plan.nft, ...(opts.writer ? { writer: opts.writer } : {}) };
  const report = (changed: boolean, notes: string[]): CaptureReport => ({ backend: 'nftables', reason: '--native-nftables', changed, families: [], notes });
  if (plan.cleanupOnly) {
    const notes = (await cleanNftables(nftOpts, plan.tablesToDelete)).map((table) => `deleted table inet ${table}`);
    notes.push(...(await cleanTproxyRouting(opts)));
    return report(notes.length > 0, notes);
  }
  const result = await applyNftPlan(plan.ruleset, plan.transaction!, nftOpts);
  const notes: string[] = [];
  // Mesh rules left in an iptables backend would capture twice, or hide where the capture is.
  for (const snapshot of plan.staleBackends) {
    log.warn(`removing ${snapshot.meshRules} mesh rules left in iptables-${snapshot.variant}: native nftables now holds the capture`);
    await cleanIptables({ sys, log, binaries: snapshot.binaries, prefetched: snapshot.saves, lockTimeoutSeconds: plan.config.lockTimeoutSeconds, ...backoffOf(opts) });
    notes.push(`removed mesh rules from iptables-${snapshot.variant}`);
  }
  notes.push(...(await applyRoutes(plan.routes, opts)));
  return report(result.changed || notes.length > 0, notes);
}

const backoffOf = (opts: EngineOptions) => (opts.backoff ? { backoff: opts.backoff } : {});

function bySteps(steps: readonly FamilyStep[]) {
  const binaries: Partial<Record<Family, IptablesBinaries>> = {};
  const prefetched: Partial<Record<Family, string>> = {};
  const firstPlans: Partial<Record<Family, FamilyPlan>> = {};
  for (const step of steps) {
    binaries[step.family] = step.binaries;
    if (step.saved !== undefined) prefetched[step.family] = step.saved;
    if (step.plan) firstPlans[step.family] = step.plan;
  }
  return { binaries, prefetched, firstPlans };
}

async function applyIptables(plan: IptablesCapturePlan, opts: EngineOptions): Promise<CaptureReport> {
  const { sys, log } = opts;
  const { config } = plan;
  const common = { sys, log, lockTimeoutSeconds: config.lockTimeoutSeconds, ...backoffOf(opts) };
  const writer = opts.writer ? { writer: opts.writer } : {};
  const steps = bySteps(plan.families);
  if (!plan.assumed) log.info(`backend ${plan.backend}: ${plan.reason}`);

  if (plan.cleanupOnly) {
    const cleaned = await cleanIptables({ ...common, binaries: steps.binaries, prefetched: steps.prefetched });
    const notes = [...cleaned.map((family) => `removed the ${family} mesh rules`), ...(await cleanTproxyRouting(opts))];
    return { backend: plan.backend, reason: plan.reason, changed: notes.length > 0, families: [], notes };
  }

  const notes: string[] = [];
  const reconcileWith = (binaries: Partial<Record<Family, IptablesBinaries>>, prefetched?: Partial<Record<Family, string>>, firstPlans?: Partial<Record<Family, FamilyPlan>>) =>
    reconcileIptables(plan.ruleset, { ...common, ...writer, binaries, prefetched, firstPlans, force: config.forceApply, resolveId: opts.resolveId });
  let backend = plan.backend;
  let stale = plan.staleBackend;
  let families: FamilyOutcome[];
  try {
    families = await reconcileWith(steps.binaries, steps.prefetched, steps.firstPlans);
  } catch (error) {
    // The chosen backend cannot do it (table or extension missing); the other one may.
    const fallback = plan.fallback;
    if (!(error instanceof MeshcapError && error.otherBackendMayWork && fallback)) throw error;
    stale = undefined;
    log.warn(`${backend} cannot apply the rules (${error.what}); falling back to iptables-${fallback.variant}. Node-level fix: ${error.fix}`);
    requireUsable(fallback, 'fallback', config);
    if (fallback.variant === 'legacy') checkCapabilities(sys, 'legacy', `${backend} could not apply the rules`);
    families = await reconcileWith(familiesToTouch(fallback, plan.ipv6Available), fallback.saves);
    notes.push(`fell back from ${backend} to iptables-${fallback.variant}: ${error.why}`);
    // One family may have committed on the failed backend before the other failed: remove it.
    await cleanIptables({ ...common, binaries: steps.binaries }).catch((cleanError: unknown) =>
      log.warn(`could not remove partial mesh rules from ${backend}: ${(cleanError as Error).message}`),
    );
    backend = `iptables-${fallback.variant}`;
  }

  if (!plan.assumed) {
    if (stale) {
      log.warn(`iptables-${stale.variant} also holds ${stale.meshRules} mesh rules; removing them so the capture lives in one place (${backend})`);
      await cleanIptables({ ...common, binaries: stale.binaries, prefetched: stale.saves });
      notes.push(`removed stale mesh rules from iptables-${stale.variant}`);
    }
    if (plan.nft && plan.nftTablesToDelete.length > 0) {
      const removed = await cleanNftables({ sys, log, nft: plan.nft });
      log.warn(`removed native nftables mesh tables (${removed.join(', ')}): ${backend} now holds the capture`);
      notes.push(`removed nftables tables ${removed.join(', ')}`);
    }
    notes.push(...(await applyRoutes(plan.routes, opts)));
  }
  return { backend, reason: plan.reason, changed: families.some((f) => f.changed) || notes.length > 0, families, notes };
}

async function applyRoutes(routes: RoutePlan, opts: EngineOptions): Promise<string[]> {
  const notes: string[] = [];
  if (routes.passthroughV6 && (await ensureIpv6Passthrough(opts))) notes.push('added ::6/128 to lo');
  if (routes.tproxy) notes.push(...(await ensureTproxyRouting(opts, routes.tproxy)));
  return notes;
}

/** `meshcap clean`: every mesh chain, rule, table and TPROXY route, from every backend. */
export async function cleanEverything(opts: EngineOptions & { lockTimeoutSeconds: number }): Promise<string[]> {
  const { sys, log } = opts;
  const removed: string[] = [];
  for (const variant of ['legacy', 'nft'] as const) {
    const snapshot = await snapshotBackend(sys, variant);
    // Legacy tables that cannot be read without CAP_NET_RAW may hold a capture: say so rather than report it clean.
    if (variant === 'legacy' && !snapshot.usable && snapshot.binaries.ipv4 && /Permission denied|you must be root/i.test(snapshot.problem ?? '')) {
      checkCapabilities(sys, 'legacy', `iptables-legacy tables exist in this namespace and reading them needs it (${snapshot.problem})`);
    }
    // cleanIptables finds nothing to do in a state without mesh chains or rules.
    if (!snapshot.usable) continue;
    const families = await cleanIptables({ sys, log, binaries: snapshot.binaries, prefetched: snapshot.saves, lockTimeoutSeconds: opts.lockTimeoutSeconds, ...backoffOf(opts) });
    removed.push(...families.map((family) => `iptables-${variant} ${familyLabel(family)} mesh chains and rules`));
  }
  const nft = sys.which('nft');
  if (nft) removed.push(...(await cleanNftables({ sys, log, nft })).map((table) => `nftables table inet ${table}`));
  removed.push(...(await cleanTproxyRouting(opts)));
  return removed;
}

