/**
 * The half of meshcap-cni that runs inside the pod's network namespace
 * (started under `unshare --mount` and `nsenter --net=<CNI_NETNS>`): the same engine and parser as
 * `meshcap istio-iptables`, with the outcome printed as one JSON line for the
 * plugin to turn into a CNI result or error. Here /proc/self/net, the
 * interfaces and the tables are the pod's.
 */
import { readHostFacts } from '../backend/host.js';
import { readNamespaceFacts } from '../backend/namespaces.js';
import { hostNetnsEvidence } from '../preflight/host-netns.js';
import { realSystem } from '../backend/system.js';
import { parseCaptureConfig } from '../config/parse.js';
import { isMeshcapError, InvalidInputError } from '../errors.js';
import { lineLogger, type Logger } from '../log.js';
import { runCapture } from '../reconcile/engine.js';
import { buildRuleset } from '../rules/build.js';
import { analyzeStatus } from '../status/analyze.js';
import { derivedArgs } from '../status/derive.js';
import { readNamespace } from '../status/gather.js';
import { roundTrip } from '../status/roundtrip.js';
import { HOST_MNTNS_ENV, neutraliseNss } from './nss-sandbox.js';

export type ChildOutcome =
  | { readonly ok: true; readonly changed?: boolean; readonly backend?: string; readonly summary?: string }
  | { readonly ok: false; readonly kind: 'engine' | 'config' | 'missing' | 'differs' | 'conflict' | 'internal'; readonly exitCode: number; readonly what: string; readonly why: string; readonly fix: string; readonly detail?: string };

type Env = Readonly<Record<string, string | undefined>>;

function stderrLogger(write: (text: string) => void): Logger {
  return lineLogger((line) => write(line.replace(/^meshcap /, 'meshcap-cni ')));
}

function failure(error: unknown): ChildOutcome {
  if (error instanceof InvalidInputError) return { ok: false, kind: 'config', exitCode: 2, what: 'the derived istio-iptables arguments were refused', why: error.message, fix: 'fix the traffic annotations on the pod' };
  if (isMeshcapError(error)) return { ok: false, kind: 'engine', exitCode: error.exitCode, what: error.what, why: error.why, fix: error.fix, ...(error.output ? { detail: error.output } : {}) };
  return { ok: false, kind: 'internal', exitCode: 1, what: 'meshcap-cni failed unexpectedly (please report it)', why: error instanceof Error ? (error.stack ?? error.message) : String(error), fix: 'report it with the pod annotations' };
}

export async function runChild(action: string, args: readonly string[], env: Env, stderr: (text: string) => void): Promise<ChildOutcome> {
  try {
    const { [HOST_MNTNS_ENV]: hostMntns, ...own } = env;
    const sys = realSystem(own);
    // Before any iptables or nft runs: their uid lookups must not reach the node's name service.
    // One short child before anything else runs: spawnSync spares the pipes and event-loop turns.
    await neutraliseNss(realSystem(own, { blocking: true }), hostMntns, (line) => stderr(`meshcap-cni: ${line}\n`));
    const config = parseCaptureConfig(args, own, readHostFacts());
    const log = stderrLogger(stderr);
    if (action === 'apply') {
      // CNI_NETNS must be a pod's: never the machine's own namespace, whatever the runtime passed.
      const evidence = hostNetnsEvidence(readNamespaceFacts(sys));
      if (evidence) return { ok: false, kind: 'engine', exitCode: 2, what: "refusing to capture in the machine's own network namespace", why: `CNI_NETNS leads to it (${evidence})`, fix: 'check the runtime: CNI_NETNS must be the pod sandbox netns' };
      const report = await runCapture(config, { sys, log });
      return { ok: true, changed: report.changed, backend: report.backend };
    }
    if (action === 'check') return await check(config, sys);
    return { ok: false, kind: 'internal', exitCode: 1, what: `unknown netns action ${action}`, why: 'meshcap-cni was called with an internal command it does not know', fix: 'reinstall meshcap-cni' };
  } catch (error) {
    return failure(error);
  }
}

/** Read-only: the live rules against the desired ones, as `meshcap status` sees them; no connection is opened. */
async function check(config: ReturnType<typeof parseCaptureConfig>, sys: ReturnType<typeof realSystem>): Promise<ChildOutcome> {
  const read = await readNamespace(sys);
  const report = analyzeStatus({ read, config, ruleset: buildRuleset(config), roundTrip: (derived, source) => roundTrip(read, derived, source) });
  const active = report.backends.find((b) => b.name === report.active);
  const live = active?.derived ? `live rules correspond to: istio-iptables ${derivedArgs(active.derived).join(' ')}` : '';
  const fix = "delete the pod so its sandbox is re-created, or run 'meshcap apply' with the pod's arguments in its netns";
  switch (report.health) {
    case 'healthy':
      return { ok: true, summary: report.summary };
    case 'absent':
      return { ok: false, kind: 'missing', exitCode: 6, what: 'the mesh capture is missing from the pod network namespace', why: report.summary, fix };
    case 'conflict':
      return { ok: false, kind: 'conflict', exitCode: 6, what: 'mesh rules are in more than one backend', why: report.summary, fix, detail: report.warnings.join('\n') };
    default:
      return { ok: false, kind: 'differs', exitCode: 6, what: 'the live capture differs from the one the pod annotations ask for', why: report.summary, fix, detail: [...(active?.problems ?? []), ...(report.drift ?? []), live].filter((l) => l !== '').join('\n') };
  }
}
