/**
 * meshcap-cni, the chained CNI plugin: the imperative shell around the pure
 * request parser and decision. It runs in the runtime's (host) namespaces;
 * the capture itself runs in a child started under `nsenter --net=<netns>`,
 * with a clean environment, a lock file of its own and a private mount
 * namespace that keeps the node's name service out (nss-sandbox.ts). stdout carries only
 * the CNI result or error object; logs go to stderr.
 */
import { closeSync, mkdirSync, openSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { RunResult, System } from '../backend/system.js';
import { fallbackWarning, HOST_MNTNS_ENV, sandboxWrapper, UNSHARE_ARGS, unshareFailed } from './nss-sandbox.js';
import type { ChildOutcome } from './netns-child.js';
import { decide, type Decision, skipWithoutPod } from './decide.js';
import { lookupPodAnnotations, readKubeconfig } from './kube.js';
import { type CniRequest, parseCommand, parseRequest } from './request.js';
import { CniCode, CniError, convertResult, details, errorObject, minimalResult, versionAnswer } from './spec.js';

export interface PluginIo {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdin: string;
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly sys: System;
  /** How to start this program again (the SEA: itself; from a checkout: node + the CLI). */
  readonly self: readonly string[];
}

function lockFile(request: Pick<CniRequest, 'settings'>, containerId: string): string {
  return join(request.settings.stateDir, 'locks', `${containerId.replace(/[^A-Za-z0-9_.-]/g, '_')}.lock`);
}

export async function runPlugin(io: PluginIo): Promise<number> {
  const log = (line: string) => io.stderr(`meshcap-cni: ${line}\n`);
  let version = '1.0.0';
  let command = '';
  try {
    command = parseCommand(io.env);
    if (command === 'VERSION') {
      const requested = (() => {
        try {
          const v = (JSON.parse(io.stdin || '{}') as { cniVersion?: unknown }).cniVersion;
          return typeof v === 'string' ? v : '1.0.0';
        } catch {
          return '1.0.0';
        }
      })();
      io.stdout(`${JSON.stringify(versionAnswer(requested))}\n`);
      return 0;
    }
    // DEL must succeed whatever it is given: a failed DEL blocks the pod's removal for ever.
    if (command === 'DEL') return del(io, log);
    const request = parseRequest(io.env, io.stdin);
    version = request.cniVersion;
    for (const warning of request.warnings) log(`warning: ${warning}`);
    switch (request.command) {
      case 'ADD':
        return await add(request, io, log);
      case 'CHECK':
        return await check(request, io, log);
      case 'STATUS':
        return status(request, io, log);
      case 'GC':
        return gc(request, log);
      default:
        return 0;
    }
  } catch (error) {
    const cni = error instanceof CniError ? error : new CniError(CniCode.CaptureFailed, 'meshcap-cni failed unexpectedly (please report it)', details(error instanceof Error ? error.message : String(error), 'report it with the containerd log'));
    if (!(error instanceof CniError)) log(error instanceof Error ? (error.stack ?? error.message) : String(error));
    log(`${command || 'request'} failed: ${cni.message}; ${cni.details}`);
    io.stdout(`${JSON.stringify(errorObject(version, cni))}\n`);
    return 1;
  }
}

function del(io: PluginIo, log: (line: string) => void): number {
  try {
    const request = parseRequest(io.env, io.stdin || '{"cniVersion":"1.0.0"}');
    if (request.containerId) rmSync(lockFile(request, request.containerId), { force: true });
  } catch (error) {
    log(`DEL: ignored: ${(error as Error).message}`);
  }
  // The netns is being destroyed with its rules: nothing to undo in it.
  return 0;
}

async function decideFor(request: CniRequest, log: (line: string) => void): Promise<Decision> {
  const early = skipWithoutPod(request.pod, request.settings);
  if (early) return early;
  const pod = request.pod!;
  if (request.annotations) return decide(request.annotations, pod);
  // No annotations from the runtime: the agent's own pod must not wait on the kubeconfig it writes.
  if (pod.namespace === request.settings.agentNamespace && pod.name.startsWith(request.settings.agentPodPrefix)) {
    return { kind: 'skip', reason: "the meshcap CNI agent's own pod (by name; the runtime passed no annotations)" };
  }
  log(`no pod annotations from the runtime for ${pod.namespace}/${pod.name}: asking the API server`);
  const target = readKubeconfig(request.settings.kubeconfig);
  const annotations = await lookupPodAnnotations(target, pod, { timeoutSeconds: request.settings.apiTimeoutSeconds, log });
  return decide(annotations, pod);
}

function passThrough(request: CniRequest, io: PluginIo): void {
  const result = request.prevResult ? convertResult(request.prevResult, request.cniVersion) : minimalResult(request.cniVersion);
  io.stdout(`${JSON.stringify(result)}\n`);
}

function netnsUsable(netns: string): void {
  const stat = statSync(netns, { throwIfNoEntry: false });
  if (!stat) {
    throw new CniError(CniCode.NetnsUnusable, `the pod network namespace ${netns} does not exist`, details('the sandbox was torn down before the plugin ran', 'nothing to do: the runtime retries the sandbox'));
  }
}

async function inNetns(request: CniRequest, io: PluginIo, action: 'apply' | 'check', decision: Extract<Decision, { kind: 'capture' }>): Promise<ChildOutcome> {
  const args = decision.args;
  netnsUsable(request.netns);
  const nsenter = io.sys.which('nsenter');
  if (!nsenter) {
    throw new CniError(CniCode.CaptureFailed, "cannot enter the pod network namespace: 'nsenter' is not on the node's PATH", details('meshcap-cni uses util-linux nsenter to run the capture inside the pod netns', 'install util-linux on the node (every mainstream distribution has it)'));
  }
  const lock = lockFile(request, request.containerId);
  mkdirSync(join(request.settings.stateDir, 'locks'), { recursive: true, mode: 0o700 });
  // Created here (iptables-nft never creates it): DEL removes it, GC removes those of attachments the runtime forgot.
  closeSync(openSync(lock, 'a', 0o600));
  const [file, ...selfArgs] = io.self;
  // Only what the engine needs: the runtime's own environment must not steer the capture (no ISTIO_* leaking in).
  // Plus what istio-init would get from the pod that shapes the rules (proxyMetadata, e.g. ISTIO_META_DNS_CAPTURE): one derivation.
  const env: Record<string, string> = { ...Object.fromEntries(decision.env), PATH: io.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', XTABLES_LOCKFILE: lock };
  const entered = [`--net=${request.netns}`, '--', file!, ...selfArgs, '__netns', action, ...args];
  const sandbox = sandboxWrapper(io.sys);
  let result: RunResult | undefined;
  if ('unshare' in sandbox) {
    result = await io.sys.run(sandbox.unshare, [...UNSHARE_ARGS, nsenter, ...entered], { env: { ...env, [HOST_MNTNS_ENV]: sandbox.hostMntns }, timeoutMs: 60_000 });
    const failed = unshareFailed(result);
    if (failed) {
      io.stderr(`meshcap-cni: ${fallbackWarning(failed)}\n`);
      result = undefined;
    }
  } else {
    io.stderr(`meshcap-cni: ${fallbackWarning(sandbox.problem)}\n`);
  }
  result ??= await io.sys.run(nsenter, entered, { env, timeoutMs: 60_000 });
  for (const line of result.stderr.split('\n')) if (line.trim() !== '') io.stderr(`${line}\n`);
  const last = result.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(last) as ChildOutcome;
  } catch {
    if (/reassociate|No such file|Invalid argument/i.test(result.stderr)) {
      throw new CniError(CniCode.NetnsUnusable, `cannot enter the pod network namespace ${request.netns}`, details(result.stderr.trim().split('\n')[0] ?? `nsenter exit ${result.code}`, 'the sandbox may have been torn down; the runtime retries it'));
    }
    throw new CniError(CniCode.CaptureFailed, 'the capture step inside the pod network namespace gave no answer', details(`exit ${result.code}${result.signal ? ` (signal ${result.signal})` : ''}: ${result.stderr.trim().split('\n').slice(-1)[0] ?? ''}`, 'check the node has enough memory and that meshcap-cni is intact (meshcap cni install re-copies it)'));
  }
}

function engineError(outcome: Extract<ChildOutcome, { ok: false }>, pod: string): CniError {
  const output = outcome.detail;
  return new CniError(CniCode.CaptureFailed, `capture not applied for pod ${pod}: ${outcome.what}`, details(outcome.why, outcome.fix, output));
}

async function add(request: CniRequest, io: PluginIo, log: (line: string) => void): Promise<number> {
  const started = Date.now();
  const decision = await decideFor(request, log);
  const pod = request.pod ? `${request.pod.namespace}/${request.pod.name}` : request.containerId;
  if (decision.kind === 'skip') {
    log(`ADD ${pod}: skipped: ${decision.reason}`);
    passThrough(request, io);
    return 0;
  }
  if (decision.ignoredEnv.length > 0) log(`ADD ${pod}: proxyMetadata ${decision.ignoredEnv.join(', ')} ignored: not capture settings, and the capture runs on the node`);
  const outcome = await inNetns(request, io, 'apply', decision);
  if (!outcome.ok) throw engineError(outcome, pod);
  log(`ADD ${pod}: capture ${outcome.changed ? 'applied' : 'already in place'} (${outcome.backend}) in ${Date.now() - started} ms: istio-iptables ${decision.args.join(' ')}`);
  passThrough(request, io);
  return 0;
}

async function check(request: CniRequest, io: PluginIo, log: (line: string) => void): Promise<number> {
  const decision = await decideFor(request, log);
  const pod = request.pod ? `${request.pod.namespace}/${request.pod.name}` : request.containerId;
  if (decision.kind === 'skip') {
    log(`CHECK ${pod}: not captured by meshcap (${decision.reason}): nothing to check`);
    return 0;
  }
  const outcome = await inNetns(request, io, 'check', decision);
  if (outcome.ok) {
    log(`CHECK ${pod}: ${outcome.summary ?? 'ok'}`);
    return 0;
  }
  const code = outcome.kind === 'missing' ? CniCode.CaptureMissing : outcome.kind === 'conflict' ? CniCode.ForeignConflict : outcome.kind === 'differs' ? CniCode.CaptureDiffers : CniCode.CaptureFailed;
  throw new CniError(code, `CHECK failed for pod ${pod}: ${outcome.what}`, details(outcome.why, outcome.fix, outcome.detail));
}

function status(request: CniRequest, io: PluginIo, log: (line: string) => void): number {
  const missing = ['nsenter', 'iptables-restore', 'iptables-save'].filter((name) => !io.sys.which(name) && !(name.startsWith('iptables') && io.sys.which('nft')));
  if (missing.length === 0) return 0;
  const problem = `cannot serve ADD: ${missing.join(', ')} not on the node's PATH`;
  if (!request.settings.statusGate) {
    log(`STATUS: ${problem} (reported as ready: statusGate is off)`);
    return 0;
  }
  throw new CniError(CniCode.StatusCannotAdd, problem, details('the capture runs the node\'s nsenter and iptables/nft', 'install util-linux and iptables (or nftables) on the node'));
}

/** Lock files of attachments the runtime no longer has; a netns is never touched. */
function gc(request: CniRequest, log: (line: string) => void): number {
  const dir = join(request.settings.stateDir, 'locks');
  const keep = new Set(request.validAttachments.map((a) => `${a.containerID.replace(/[^A-Za-z0-9_.-]/g, '_')}.lock`));
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    if (keep.has(name) || !name.endsWith('.lock')) continue;
    try {
      rmSync(join(dir, name), { force: true });
      log(`GC: removed ${name}`);
    } catch (error) {
      log(`GC: could not remove ${name}: ${(error as Error).message}`);
    }
  }
  return 0;
}
