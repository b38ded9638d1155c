/**
 * Is this evidently the machine's own network namespace rather than a pod's?
 * Decided from gathered facts alone. Pure.
 *
 * Two kinds of evidence, either enough:
 *  - the namespace is the kernel's initial one by number: since Linux 6.18
 *    init_net has the fixed inode 0xEFFFFFF9 (4026531833); every other network
 *    namespace gets a dynamic one (0xF0000000 and up), so on any kernel no pod
 *    namespace can carry it;
 *  - the kernel's threads are visible (PID 2 is kthreadd: the initial pid
 *    namespace, so PID 1 is the machine's init) and our namespace is PID 1's.
 *
 * Never fires for: an init container (its own pid namespace: PID 1 is not the
 * machine's; its network namespace is the pod's); a CNI plugin or a hostPID pod
 * (kernel threads visible, but the network namespace is the pod's, not PID 1's);
 * `ip netns exec` or `unshare -n` (a new namespace). Fires for hostNetwork pods,
 * `podman --network host` and systemd-nspawn without --private-network: all of
 * them are the machine's own namespace, where a capture redirects its traffic.
 * When nothing can be read it does not fire: a pod must never be refused.
 */
import type { NamespaceFacts } from '../backend/namespaces.js';

/** init_net's fixed inode number (PROC_NET_INIT_INO, Linux 6.18+). */
export const INITIAL_NETNS = 'net:[4026531833]';

/** The evidence, in words, that this is the machine's own namespace; undefined when it is not evident. */
export function hostNetnsEvidence(facts: NamespaceFacts): string | undefined {
  if (facts.selfNet === INITIAL_NETNS) return `${facts.selfNet} is the kernel's initial network namespace`;
  if (facts.kernelThreadsVisible && facts.selfNet !== undefined && facts.selfNet === facts.pid1Net) {
    return `this is PID 1's network namespace (${facts.selfNet}) and the kernel's threads are visible, so PID 1 is the machine's init`;
  }
  return undefined;
}
