import type { Analyzer, Evidence, Finding, MarkerHit } from './types.js';

/**
 * Reconstructs container states from `kubectl describe pod` text and from
 * `kubectl get pod -o json` documents, then draws conclusions no single line
 * supports: a Job whose app finished while its sidecar still runs, a capture
 * init container that keeps restarting, a CNI validator's exit code.
 */

const MESH_INIT = new Set([
  'istio-init',
  'istio-validation',
  'linkerd-init',
  'linkerd-network-validator',
  'kuma-init',
  'kuma-validation',
  'consul-connect-inject-init',
  'consul-connect-init',
]);
/** Installers that leave the capture in place when they complete. */
const CAPTURE_DONE_BY = new Set([...MESH_INIT]);
const PROXIES = new Set(['istio-proxy', 'linkerd-proxy', 'kuma-sidecar', 'consul-dataplane', 'envoy-sidecar']);
/** Validator container -> the exit code it uses for "traffic is not redirected". */
const VALIDATOR_EXIT = new Map([
  ['istio-validation', 126],
  ['linkerd-network-validator', 95],
]);

interface ContainerObs {
  name: string;
  init: boolean;
  nameLine: Evidence;
  state?: string;
  stateLine?: Evidence;
  reason?: string;
  exitCode?: number;
  lastReason?: string;
  lastExitCode?: number;
  lastLine?: Evidence;
  restarts: number;
  restartLine?: Evidence;
}

interface PodObs {
  owner?: { kind: string; evidence: Evidence };
  containers: ContainerObs[];
}

// kubectl describe layout.
const DESCRIBE_POD_START = /^Name:\s{1,40}\S/;
const DESCRIBE_SECTION = /^([A-Z][A-Za-z -]{0,40}):/;
const DESCRIBE_CONTAINER = /^ {2}([a-z0-9][-a-z0-9.]{0,252}):\s{0,8}$/;
const DESCRIBE_STATE = /^ {4}State:\s{1,40}(Running|Waiting|Terminated)/;
const DESCRIBE_LAST_STATE = /^ {4}Last State:\s{1,40}(Running|Waiting|Terminated)/;
const DESCRIBE_REASON = /^ {6}Reason:\s{1,40}(\S{1,80})/;
const DESCRIBE_EXIT = /^ {6}Exit Code:\s{1,40}(-?\d{1,4})/;
const DESCRIBE_READY = /^ {4}Ready:\s/;
const DESCRIBE_RESTARTS = /^ {4}Restart Count:\s{1,40}(\d{1,7})/;
const DESCRIBE_INIT_SECTION = /^Init Containers:\s{0,4}$/;
const DESCRIBE_OWNER = /^Controlled By:\s{1,40}([A-Za-z]{1,40})\/\S{1,253}/;

/** Largest JSON document buffered for parsing; beyond it the document is ignored. */
const MAX_JSON_CHARS = 8 * 1024 * 1024;

export class PodStateAnalyzer implements Analyzer {
  private readonly pods: PodObs[] = [];
  private describe: PodObs | undefined;
  private section = '';
  private container: ContainerObs | undefined;
  private sub: 'state' | 'last' | undefined;
  private json: { lines: Evidence[]; chars: number } | undefined;

  line(lineNo: number, text: string): void {
    this.readJson(lineNo, text);
    this.readDescribe(lineNo, text);
  }

  boundary(): void {
    this.endDescribe();
    this.json = undefined;
  }

  finish(): { findings: Finding[]; markers: MarkerHit[] } {
    this.endDescribe();
    const findings: Finding[] = [];
    const markers: MarkerHit[] = [];
    for (const pod of this.pods) judgePod(pod, findings, markers);
    return { findings, markers };
  }

  private readDescribe(lineNo: number, text: string): void {
    const evidence = { line: lineNo, text };
    if (DESCRIBE_POD_START.test(text)) {
      this.endDescribe();
      this.describe = { containers: [] };
      return;
    }
    // A pasted excerpt often starts at the container list, without the pod's header.
    if (this.describe === undefined && DESCRIBE_INIT_SECTION.test(text)) this.describe = { containers: [] };
    const pod = this.describe;
    if (pod === undefined) return;
    const owner = DESCRIBE_OWNER.exec(text);
    if (owner !== null && owner[1] !== undefined) {
      pod.owner = { kind: owner[1], evidence };
      return;
    }
    const section = DESCRIBE_SECTION.exec(text);
    if (section !== null && section[1] !== undefined) {
      this.section = section[1];
      this.container = undefined;
      this.sub = undefined;
      return;
    }
    if (this.section !== 'Init Containers' && this.section !== 'Containers') return;
    const name = DESCRIBE_CONTAINER.exec(text);
    if (name !== null && name[1] !== undefined) {
      this.container = { name: name[1], init: this.section === 'Init Containers', nameLine: evidence, restarts: 0 };
      pod.containers.push(this.container);
      this.sub = undefined;
      return;
    }
    const c = this.container;
    if (c === undefined) return;
    const state = DESCRIBE_STATE.exec(text);
    if (state !== null) {
      c.state = state[1]?.toLowerCase();
      c.stateLine = evidence;
      this.sub = 'state';
      return;
    }
    const last = DESCRIBE_LAST_STATE.exec(text);
    if (last !== null) {
      c.lastLine = evidence;
      this.sub = 'last';
      return;
    }
    const reason = DESCRIBE_REASON.exec(text);
    if (reason !== null && reason[1] !== undefined) {
      if (this.sub === 'state') {
        c.reason = reason[1];
        c.stateLine = evidence;
      } else if (this.sub === 'last') {
        c.lastReason = reason[1];
        c.lastLine = evidence;
      }
      return;
    }
    const exit = DESCRIBE_EXIT.exec(text);
    if (exit !== null && exit[1] !== undefined) {
      if (this.sub === 'state') c.exitCode = Number(exit[1]);
      else if (this.sub === 'last') {
        c.lastExitCode = Number(exit[1]);
        c.lastLine = evidence;
      }
      return;
    }
    if (DESCRIBE_READY.test(text)) {
      this.sub = undefined;
      return;
    }
    const restarts = DESCRIBE_RESTARTS.exec(text);
    if (restarts !== null && restarts[1] !== undefined) {
      c.restarts = Number(restarts[1]);
      c.restartLine = evidence;
    }
  }

  private endDescribe(): void {
    if (this.describe !== undefined && this.describe.containers.length > 0) this.pods.push(this.describe);
    this.describe = undefined;
    this.section = '';
    this.container = undefined;
    this.sub = undefined;
  }

  /** Buffers a top-level `{ ... }` document (kubectl prints objects that way) and parses it once closed. */
  private readJson(lineNo: number, text: string): void {
    if (this.json === undefined) {
      if (text === '{') this.json = { lines: [{ line: lineNo, text }], chars: 1 };
      return;
    }
    const doc = this.json;
    doc.lines.push({ line: lineNo, text });
    doc.chars += text.length + 1;
    if (doc.chars > MAX_JSON_CHARS) {
      this.json = undefined;
      return;
    }
    if (text !== '}') return;
    this.json = undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(doc.lines.map((l) => l.text).join('\n'));
    } catch {
      return;
    }
    for (const pod of podsOf(parsed)) {
      const obs = podFromJson(pod, doc.lines);
      if (obs.containers.length > 0) this.pods.push(obs);
    }
  }
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function podsOf(doc: unknown): Json[] {
  if (!isObject(doc)) return [];
  if (doc['kind'] === 'Pod') return [doc];
  if (doc['kind'] === 'List' && Array.isArray(doc['items'])) {
    return doc['items'].filter((item): item is Json => isObject(item) && item['kind'] === 'Pod');
  }
  return [];
}

function podFromJson(pod: Json, lines: readonly Evidence[]): PodObs {
  const obs: PodObs = { containers: [] };
  const metadata = isObject(pod['metadata']) ? pod['metadata'] : {};
  const owners = Array.isArray(metadata['ownerReferences']) ? metadata['ownerReferences'] : [];
  for (const owner of owners) {
    if (isObject(owner) && typeof owner['kind'] === 'string') {
      const kind = owner['kind'];
      obs.owner = { kind, evidence: findLine(lines, `"kind": "${kind}"`, 0) ?? firstLine(lines) };
      break;
    }
  }
  const status = isObject(pod['status']) ? pod['status'] : {};
  for (const [key, init] of [
    ['initContainerStatuses', true],
    ['containerStatuses', false],
  ] as const) {
    const list = Array.isArray(status[key]) ? status[key] : [];
    const listStart = lines.findIndex((l) => l.text.includes(`"${key}"`));
    for (const entry of list) {
      if (!isObject(entry) || typeof entry['name'] !== 'string') continue;
      const name = entry['name'];
      const nameLine = findLine(lines, `"name": "${name}"`, Math.max(0, listStart)) ?? firstLine(lines);
      const c: ContainerObs = { name, init, nameLine, restarts: numberOr(entry['restartCount'], 0) };
      if (c.restarts > 0) c.restartLine = findLine(lines, `"restartCount": ${c.restarts}`, Math.max(0, listStart)) ?? nameLine;
      readJsonState(entry['state'], c, 'state', nameLine);
      readJsonState(entry['lastState'], c, 'last', nameLine);
      obs.containers.push(c);
    }
  }
  return obs;
}

function readJsonState(state: unknown, c: ContainerObs, which: 'state' | 'last', at: Evidence): void {
  if (!isObject(state)) return;
  for (const kind of ['running', 'waiting', 'terminated'] as const) {
    const detail = state[kind];
    if (!isObject(detail)) continue;
    const reason = typeof detail['reason'] === 'string' ? detail['reason'] : undefined;
    const exit = typeof detail['exitCode'] === 'number' ? detail['exitCode'] : undefined;
    if (which === 'state') {
      c.state = kind;
      c.reason = reason;
      c.exitCode = exit;
      c.stateLine = at;
    } else {
      c.lastReason = reason;
      c.lastExitCode = exit;
      c.lastLine = at;
    }
    return;
  }
}

function numberOr(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}

function findLine(lines: readonly Evidence[], needle: string, from: number): Evidence | undefined {
  for (let i = from; i < lines.length; i += 1) {
    const line = lines[i];
    if (line !== undefined && line.text.includes(needle)) return line;
  }
  return undefined;
}

function firstLine(lines: readonly Evidence[]): Evidence {
  return lines[0] ?? { line: 1, text: '' };
}

function judgePod(pod: PodObs, findings: Finding[], markers: MarkerHit[]): void {
  for (const c of pod.containers) {
    if (!c.init || !MESH_INIT.has(c.name)) continue;
    const crashLooping = (c.state === 'waiting' && c.reason === 'CrashLoopBackOff') || (c.restarts > 0 && (c.lastExitCode ?? 0) !== 0);
    if (crashLooping) {
      markers.push({ marker: 'init-crashloop', evidence: c.stateLine ?? c.nameLine });
      // A crash-looping installer is most often a re-run over existing chains, but alone that is only a hint.
      if (!VALIDATOR_EXIT.has(c.name)) {
        findings.push({
          cause: 'rerun-existing-chains',
          name: 'init-crashloop',
          weight: 0.15,
          evidence: compact([c.nameLine, c.stateLine, c.restartLine]),
        });
      }
    }
    const validatorExit = VALIDATOR_EXIT.get(c.name);
    if (validatorExit !== undefined && (c.exitCode === validatorExit || c.lastExitCode === validatorExit)) {
      findings.push({
        cause: 'validation-failed',
        name: 'validator-exit-code',
        weight: 0.75,
        evidence: compact([c.nameLine, c.lastExitCode === validatorExit ? c.lastLine : c.stateLine]),
      });
    }
  }

  // The app's own init container runs after the capture is in place and before any proxy.
  const inits = pod.containers.filter((c) => c.init);
  const captureIndex = inits.findIndex((c) => CAPTURE_DONE_BY.has(c.name) && c.state === 'terminated' && (c.exitCode ?? 0) === 0);
  if (captureIndex >= 0) {
    const capture = inits[captureIndex];
    for (const c of inits.slice(captureIndex + 1)) {
      if (MESH_INIT.has(c.name)) continue;
      const failing = (c.state === 'waiting' && c.reason !== 'PodInitializing') || (c.restarts > 0 && (c.lastExitCode ?? 0) !== 0);
      const stuck = c.state === 'running';
      if (!failing && !stuck) continue;
      findings.push({
        cause: 'init-container-blocked',
        name: 'app-init-after-capture',
        weight: failing ? 0.7 : 0.55,
        evidence: compact([capture?.nameLine, capture?.stateLine, c.nameLine, c.stateLine, c.lastLine]),
      });
      markers.push({ marker: 'app-init-container', evidence: c.nameLine });
      break;
    }
  }

  // The app's own init container runs first and needs the mesh, but no proxy exists until every init container is done.
  const meshInitIndex = inits.findIndex((c) => MESH_INIT.has(c.name));
  const meshInit = inits[meshInitIndex];
  if (meshInit !== undefined && meshInit.state === 'waiting' && meshInit.reason === 'PodInitializing') {
    const before = inits.slice(0, meshInitIndex).find((c) => !MESH_INIT.has(c.name) && (c.state === 'running' || (c.state === 'waiting' && c.reason !== 'PodInitializing')));
    if (before !== undefined) {
      findings.push({
        cause: 'init-container-blocked',
        name: 'app-init-before-mesh',
        weight: 0.5,
        evidence: compact([before.nameLine, before.stateLine, meshInit.nameLine, meshInit.stateLine]),
      });
    }
  }

  // A Job pod whose work is done but whose (non-native) sidecar still runs.
  const mains = pod.containers.filter((c) => !c.init);
  const proxy = mains.find((c) => PROXIES.has(c.name) && c.state === 'running');
  const finishedApp = mains.find((c) => !PROXIES.has(c.name) && c.state === 'terminated' && c.exitCode === 0);
  if (proxy !== undefined && finishedApp !== undefined) {
    const ownedByJob = pod.owner !== undefined && (pod.owner.kind === 'Job' || pod.owner.kind === 'CronJob');
    findings.push({
      cause: 'sidecar-blocks-job-completion',
      name: 'app-done-proxy-running',
      weight: ownedByJob ? 0.92 : 0.55,
      evidence: compact([
        ownedByJob ? pod.owner?.evidence : undefined,
        finishedApp.nameLine,
        finishedApp.stateLine,
        proxy.nameLine,
        proxy.stateLine,
      ]),
    });
  }
}

function compact(items: ReadonlyArray<Evidence | undefined>): Evidence[] {
  return items.filter((item): item is Evidence => item !== undefined);
}

/** Every pattern this analyzer runs, for the linearity check in the tests. */
export const POD_STATE_PATTERNS: readonly RegExp[] = [
  DESCRIBE_POD_START,
  DESCRIBE_SECTION,
  DESCRIBE_CONTAINER,
  DESCRIBE_STATE,
  DESCRIBE_LAST_STATE,
  DESCRIBE_REASON,
  DESCRIBE_EXIT,
  DESCRIBE_READY,
  DESCRIBE_RESTARTS,
  DESCRIBE_OWNER,
  DESCRIBE_INIT_SECTION,
];
