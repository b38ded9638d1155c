/**
 * Who can be holding an xtables lock file, in words, from where this process
 * sees it. In an init container the lock lives in the container's own /run,
 * which kube-proxy and CNI plugins (they lock the node's /run/xtables.lock)
 * never touch; only the node's lock is shared with them. Pure.
 */
import type { LockFacts } from './namespaces.js';

export function lockHolders(path: string, facts: LockFacts): string {
  // Own pid namespace, or an overlay root (a hostPID container): this is a container.
  const inContainer = !facts.kernelThreadsVisible || (facts.rootFsType !== undefined && /^(overlay|aufs|fuse-overlayfs)$/.test(facts.rootFsType));
  if (!inContainer) return `another process on this machine (kube-proxy, a CNI plugin, another iptables run) held ${path} the whole time`;
  const mount = facts.mount;
  if (!mount) {
    return `another process held ${path} the whole time; in a container only one sharing its ${dirOf(path)} can (the same container, or one mounting the same emptyDir), on a node also kube-proxy and CNI plugins`;
  }
  if (mount.mountPoint === '/') {
    return `another process in this container held ${path} the whole time (it is on the container's own root file system: kube-proxy and CNI plugins lock the node's file, not this one)`;
  }
  if (mount.root.includes('kubernetes.io~empty-dir')) {
    return `a process in this container, or in another container of the pod mounting the same emptyDir at ${mount.mountPoint}, held ${path} the whole time (kube-proxy and CNI plugins lock the node's file, not this one)`;
  }
  return `a process in this container, or one sharing the volume mounted at ${mount.mountPoint} (another container of the pod; the node's kube-proxy and CNI plugins only if it is a hostPath of the node's ${mount.mountPoint}), held ${path} the whole time`;
}

const dirOf = (path: string) => path.slice(0, path.lastIndexOf('/')) || '/';
