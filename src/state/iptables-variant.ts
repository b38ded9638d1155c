/** The two iptables backends, and which one a binary's `--version` names. Pure. */
export type Variant = 'legacy' | 'nft';

/**
 * `iptables v1.8.9 (nf_tables)` is iptables-nft; `(legacy)` or an old version
 * without a suffix is iptables-legacy. Both streams are read: some builds print
 * the version on stderr.
 */
export function variantOfVersion(run: { readonly stdout: string; readonly stderr: string }): Variant {
  return /nf_tables/.test(run.stdout + run.stderr) ? 'nft' : 'legacy';
}
