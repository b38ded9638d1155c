/**
 * Which namespaces this process is in, read from /proc through the system
 * seam: the facts behind the host-namespace guard and the lock-holder wording.
 */
import type { System } from './system.js';

export interface NamespaceFacts {
  /** readlink /proc/self/ns/net, e.g. "net:[4026532599]". */
  readonly selfNet?: string;
  /** readlink /proc/1/ns/net; undefined when unreadable (ptrace denied, or no procfs). */
  readonly pid1Net?: string;
  /** PID 2 is kthreadd: the kernel's threads are visible, so this is the initial pid namespace. */
  readonly kernelThreadsVisible: boolean;
}

export function readNamespaceFacts(sys: Pick<System, 'readFile' | 'readLink'>): NamespaceFacts {
  const selfNet = sys.readLink('/proc/self/ns/net');
  const pid1Net = sys.readLink('/proc/1/ns/net');
  return {
    ...(selfNet ? { selfNet } : {}),
    ...(pid1Net ? { pid1Net } : {}),
    kernelThreadsVisible: kernelThreadsVisible(sys),
  };
}

/** PID 2 is the kernel's kthreadd (not a process that merely took the name: a kernel thread has no command line). */
function kernelThreadsVisible(sys: Pick<System, 'readFile'>): boolean {
  const status = sys.readFile('/proc/2/status') ?? '';
  if (!/^Name:\s*kthreadd$/m.test(status) || /^Kthread:\s*0$/m.test(status)) return false;
  return sys.readFile('/proc/2/cmdline') === '';
}

/** Where this process sees a file: the facts behind "who else can hold this lock". */
export interface LockFacts {
  readonly kernelThreadsVisible: boolean;
  /** The mount holding the file's directory, from /proc/self/mountinfo. */
  readonly mount?: Mount;
  /** File system type of the root mount ("overlay" in most containers). */
  readonly rootFsType?: string;
}

export function readLockFacts(sys: Pick<System, 'readFile'>, path: string): LockFacts {
  const mountinfo = sys.readFile('/proc/self/mountinfo');
  const dir = path.slice(0, path.lastIndexOf('/')) || '/';
  const mount = mountinfo === undefined ? undefined : mountAt(mountinfo, dir);
  const rootFsType = mountinfo === undefined ? undefined : mountAt(mountinfo, '/')?.fsType;
  return { kernelThreadsVisible: kernelThreadsVisible(sys), ...(mount ? { mount } : {}), ...(rootFsType ? { rootFsType } : {}) };
}

export interface Mount {
  readonly root: string;
  readonly mountPoint: string;
  readonly fsType: string;
  readonly source: string;
}

const unescape = (text: string) => text.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));

/** Parses /proc/self/mountinfo lines (`id parent maj:min root mountpoint options [optional...] - fstype source superoptions`). Pure. */
export function parseMountinfo(text: string): Mount[] {
  const mounts: Mount[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const dash = fields.indexOf('-');
    if (dash < 6 || fields.length < dash + 3) continue;
    mounts.push({ root: unescape(fields[3]!), mountPoint: unescape(fields[4]!), fsType: fields[dash + 1]!, source: unescape(fields[dash + 2]!) });
  }
  return mounts;
}

/** The mount a path lives on: the last-mounted one with the longest mount point containing it. Pure. */
export function mountAt(mountinfo: string, path: string): Mount | undefined {
  let best: Mount | undefined;
  for (const mount of parseMountinfo(mountinfo)) {
    const point = mount.mountPoint;
    const contains = point === '/' || path === point || path.startsWith(`${point}/`);
    if (contains && (!best || point.length >= best.mountPoint.length)) best = mount;
  }
  return best;
}
