/**
 * A System that acts inside another network namespace, given by path (the
 * CRI reports the pod's as a path, not a name): every binary runs under
 * `nsenter --net=PATH`. Kernel files that depend on the reader's network
 * namespace (/proc/net/*, /proc/sys/net/*) cannot be read synchronously from
 * here, so the ones the engine reads are fetched once, from inside, when the
 * System is made; any other such path reads as absent. Everything else is the
 * node's (filesystem, PATH, capabilities), as for `ip netns exec`.
 */
import { type Stats, statSync } from 'node:fs';
import type { System } from '../backend/system.js';
import { ExitCode, MeshcapError } from '../errors.js';
import { INITIAL_NETNS } from '../preflight/host-netns.js';

/** The per-namespace files read by backend detection, preflight and the IPv6 decision. */
export const NETNS_FILES: readonly string[] = [
  '/proc/net/ip_tables_names',
  '/proc/net/ip6_tables_names',
  '/proc/net/ip_tables_matches',
  '/proc/net/ip_tables_targets',
  '/proc/net/if_inet6',
  '/proc/sys/net/ipv6/conf/all/disable_ipv6',
];

const isPerNetns = (path: string) => path.startsWith('/proc/net/') || path.startsWith('/proc/sys/net/') || path.startsWith('/proc/self/net/');

export async function netnsSystem(base: System, netnsPath: string): Promise<System> {
  const nsenter = base.which('nsenter');
  if (!nsenter) {
    throw new MeshcapError({ exitCode: ExitCode.Unsupported, what: 'nsenter was not found on PATH', why: "the audit enters each pod's network namespace with nsenter", fix: 'install util-linux (apt-get install util-linux)' });
  }
  if (isOwnNamespace(netnsPath)) {
    throw new MeshcapError({
      exitCode: ExitCode.Unexpected,
      what: `${netnsPath} is the audit's own or the machine's network namespace`,
      why: 'the sandbox shares the node\'s network (hostNetwork), or the runtime reported the wrong path',
      fix: "nothing to do for a hostNetwork pod (it cannot be captured); the audit never changes the node's own rules",
    });
  }
  const enter = (file: string, args: readonly string[]) => [`--net=${netnsPath}`, '--', file, ...args];
  // One process for all files: `tail -n +1` prints each whole, after a `==> PATH <==` header (and skips
  // the unreadable ones with a message on stderr, so its exit code is not the namespace's health).
  const fetched = await base.run(nsenter, enter('tail', ['-n', '+1', '--', ...NETNS_FILES]), { timeoutMs: 10_000 });
  if (fetched.notFound || (fetched.code !== 0 && fetched.stdout === '')) {
    throw new MeshcapError({
      exitCode: ExitCode.Unexpected,
      what: `cannot enter the network namespace ${netnsPath}`,
      why: fetched.stderr.trim() || `nsenter exited ${fetched.code}`,
      fix: "the pod may have just stopped (the next audit skips it); otherwise run the audit as root with CAP_SYS_ADMIN and the runtime's netns directory mounted",
    });
  }
  const files = parseTailHeaders(fetched.stdout);
  // As the pod sees its namespaces: its own, and its PID 1 (the pause process) in the same one.
  const ino = statOrUndefined(netnsPath)?.ino;
  const podNet = ino === undefined ? undefined : `net:[${ino}]`;
  return {
    run: (file, args, options) => base.run(nsenter, enter(file, args), options),
    which: (name) => base.which(name),
    readFile: (path) => (isPerNetns(path) ? files.get(path) : base.readFile(path)),
    readBytes: (path) => base.readBytes(path),
    readLink: (path) => (path === '/proc/self/ns/net' || path === '/proc/1/ns/net' ? podNet : base.readLink(path)),
  };
}

/**
 * The audit's own network namespace, or the machine's (PID 1's, or the kernel's initial one), by
 * device and inode: never entered to change anything. A path that cannot be stat'ed is not one.
 */
export function isOwnNamespace(netnsPath: string, others: readonly string[] = ['/proc/self/ns/net', '/proc/1/ns/net']): boolean {
  const target = statOrUndefined(netnsPath);
  if (!target) return false;
  if (`net:[${target.ino}]` === INITIAL_NETNS) return true;
  return others.some((path) => {
    const other = statOrUndefined(path);
    return other !== undefined && other.dev === target.dev && other.ino === target.ino;
  });
}

/** Missing, or not ours to look at (PID 1's namespace without ptrace rights): undefined. */
function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/** `tail -n +1 A B` output -> path -> content. A lone file has no header, so there are always several. */
export function parseTailHeaders(text: string): Map<string, string> {
  const files = new Map<string, string>();
  const parts = text.split(/^==> (.+) <==\n/m);
  for (let i = 1; i + 1 < parts.length; i += 2) {
    // Every header but the first starts with a newline of tail's own, which is not the previous file's content.
    const body = parts[i + 1]!;
    files.set(parts[i]!, i + 2 < parts.length ? body.slice(0, -1) : body);
  }
  return files;
}
