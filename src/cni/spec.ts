/**
 * The CNI protocol, pure: versions, CNI_ARGS, results and error objects
 * (containernetworking/cni SPEC.md 1.0.0 and 1.1.0). Nothing here does I/O.
 */

export const PLUGIN_TYPE = 'meshcap-cni';
export const ANNOTATIONS_CAPABILITY = 'io.kubernetes.cri.pod-annotations';
export const SUPPORTED_VERSIONS = ['0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;

/** Error codes: 1-99 are the spec's, 100+ are meshcap's (documented in the README). */
export const CniCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  InvalidEnv: 4,
  Io: 5,
  Decode: 6,
  InvalidConfig: 7,
  TryAgainLater: 11,
  StatusCannotAdd: 50,
  /** ADD: the capture could not be applied (the engine's what/why/fix in details). */
  CaptureFailed: 100,
  /** CHECK: no mesh rules in the pod's netns. */
  CaptureMissing: 101,
  /** CHECK: mesh rules present but not the ones the annotations ask for. */
  CaptureDiffers: 102,
  /** CHECK: rules that are not meshcap's redirect the pod's traffic elsewhere. */
  ForeignConflict: 103,
  /** The pod's network namespace could not be entered. */
  NetnsUnusable: 104,
} as const;

export class CniError extends Error {
  constructor(
    readonly code: number,
    msg: string,
    readonly details: string,
  ) {
    super(msg);
    this.name = 'CniError';
  }
}

export function errorObject(cniVersion: string, error: CniError): Record<string, unknown> {
  return { cniVersion, code: error.code, msg: error.message, details: error.details };
}

/** `cause: ...; fix: ...`: what containerd prints after the msg, so `kubectl describe` shows it whole. */
export function details(why: string, fix: string, output?: string): string {
  const tail = output && output.trim() !== '' ? `; output: ${output.trim().split('\n').slice(0, 6).join(' | ')}` : '';
  return `cause: ${why}; fix: ${fix}${tail}`;
}

export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export function isSupported(version: string): boolean {
  return (SUPPORTED_VERSIONS as readonly string[]).includes(version);
}

/** `K=V;K=V` (key order is not stable on containerd: keys are parsed, never positional). */
export function parseCniArgs(text: string): { values: Map<string, string>; ignoreUnknown: boolean; malformed: string[] } {
  const values = new Map<string, string>();
  const malformed: string[] = [];
  for (const part of text.split(';')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) {
      malformed.push(part);
      continue;
    }
    values.set(part.slice(0, eq), part.slice(eq + 1));
  }
  const ignore = values.get('IgnoreUnknown');
  return { values, ignoreUnknown: ignore !== undefined && /^(1|true)$/i.test(ignore), malformed };
}

type Json = Record<string, unknown>;

/**
 * A result at another version. 0.3.x/0.4.0 and 1.x differ only in `version`
 * on each IP (removed in 1.0.0) and the top-level cniVersion; the content is
 * kept as it is, so what a later plugin or the runtime reads is unchanged.
 */
export function convertResult(result: Json, to: string): Json {
  const out: Json = { ...result, cniVersion: to };
  const ips = Array.isArray(result.ips) ? (result.ips as Json[]) : undefined;
  if (ips) {
    out.ips = ips.map((ip) => {
      const copy: Json = { ...ip };
      if (compareVersions(to, '1.0.0') >= 0) delete copy.version;
      else if (copy.version === undefined && typeof copy.address === 'string') copy.version = copy.address.includes(':') ? '6' : '4';
      return copy;
    });
  }
  return out;
}

/** What ADD prints without a prevResult (standalone, e.g. under Multus): a valid, empty result. */
export function minimalResult(version: string): Json {
  return { cniVersion: version, interfaces: [], ips: [], dns: {} };
}

export function versionAnswer(requested: string): Json {
  return { cniVersion: requested, supportedVersions: [...SUPPORTED_VERSIONS] };
}
