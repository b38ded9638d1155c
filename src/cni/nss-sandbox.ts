/**
 * Keeps the node's name service out of the capture. libxt_owner calls
 * getpwnam() on `--uid-owner 1337` even though it is numeric, and nft
 * resolves uids too: with an nsswitch.conf naming LDAP, SSSD, hesiod or
 * systemd-userdb, every ADD would wait on that service from inside the pod
 * netns, where it is unreachable. So the plugin starts its in-netns half under
 * `unshare --mount --propagation private`, and that half bind-mounts /dev/null
 * over /etc/nsswitch.conf there (glibc then uses its built-in `files`) before
 * any iptables or nft runs. The mount is made only in a private mount
 * namespace that is not the plugin's; when the sandbox cannot be made
 * (no unshare, SELinux or seccomp denial) the capture goes on without it,
 * with a warning, as Istio's plugin does (istio#48416, #48746).
 */
import type { RunResult, System } from '../backend/system.js';

/** Carries the plugin's own mount namespace to the child, which must not mount in it. */
export const HOST_MNTNS_ENV = 'MESHCAP_CNI_HOST_MNTNS';
export const NSSWITCH = '/etc/nsswitch.conf';
export const UNSHARE_ARGS = ['--mount', '--propagation', 'private', '--'] as const;

/** The plugin side: unshare wraps nsenter, or undefined (and why) when it cannot. */
export function sandboxWrapper(sys: System): { unshare: string; hostMntns: string } | { problem: string } {
  const unshare = sys.which('unshare');
  if (!unshare) return { problem: "'unshare' (util-linux) is not on the node's PATH" };
  const hostMntns = sys.readLink('/proc/self/ns/mnt');
  if (!hostMntns) return { problem: 'the mount namespace of meshcap-cni cannot be read (/proc/self/ns/mnt)' };
  return { unshare, hostMntns };
}

/** unshare itself failed (the child never ran): its own messages start with `unshare:`. */
export function unshareFailed(result: RunResult): string | undefined {
  if (/^\s*\{/m.test(result.stdout)) return undefined;
  const line = result.stderr.split('\n').find((l) => l.startsWith('unshare: '));
  if (line) return line;
  return result.notFound ? 'unshare could not be started' : undefined;
}

export function fallbackWarning(problem: string): string {
  return `warning: capture runs without a private mount namespace (${problem}): the node's nsswitch.conf applies to iptables/nft uid lookups and a remote name service there can slow ADD`;
}

/** Pure: why the bind mount must not be made here, or undefined when it may. */
export function mountRefusal(facts: { readonly hostMntns: string | undefined; readonly ownMntns: string | undefined; readonly mountinfo: string | undefined }): string | undefined {
  if (!facts.ownMntns || !facts.mountinfo) return 'the mount namespace cannot be read';
  if (facts.hostMntns === undefined || facts.ownMntns === facts.hostMntns) return "the child is in meshcap-cni's own mount namespace";
  // A shared mount would carry the bind mount back to the node.
  const shared = facts.mountinfo.split('\n').find((line) => / shared:\d+/.test(line.split(' - ')[0] ?? ''));
  if (shared) return `a mount is still shared with the node (${shared.split(' ')[4] ?? '?'})`;
  return undefined;
}

/**
 * The child side. Returns what it did, for the log. Only under the plugin's
 * unshare (HOST_MNTNS_ENV set): run by hand, nothing is mounted.
 */
export async function neutraliseNss(sys: System, hostMntns: string | undefined, warn: (line: string) => void): Promise<'neutralised' | 'no-nsswitch' | 'not-sandboxed' | 'failed'> {
  if (hostMntns === undefined) return 'not-sandboxed';
  const refusal = mountRefusal({ hostMntns, ownMntns: sys.readLink('/proc/self/ns/mnt'), mountinfo: sys.readFile('/proc/self/mountinfo') });
  if (refusal) {
    warn(fallbackWarning(refusal));
    return 'failed';
  }
  if (sys.readFile(NSSWITCH) === undefined) return 'no-nsswitch';
  const mount = sys.which('mount');
  const result = mount ? await sys.run(mount, ['--bind', '/dev/null', NSSWITCH], { timeoutMs: 5000 }) : undefined;
  if (!result || result.code !== 0) {
    warn(fallbackWarning(result ? `mount --bind /dev/null ${NSSWITCH}: ${result.stderr.trim() || `exit ${result.code}`}` : "'mount' is not on the node's PATH"));
    return 'failed';
  }
  return 'neutralised';
}
