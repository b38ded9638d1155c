/** Every chain name, table name and fixed number of the capture, in one place. */

/** The mesh's own chains (every one starts with MESH_CHAIN_PREFIX). */
export const Chain = {
  Inbound: 'ISTIO_INBOUND',
  Redirect: 'ISTIO_REDIRECT',
  InRedirect: 'ISTIO_IN_REDIRECT',
  Output: 'ISTIO_OUTPUT',
  OutputDns: 'ISTIO_OUTPUT_DNS',
  Divert: 'ISTIO_DIVERT',
  Tproxy: 'ISTIO_TPROXY',
  Drop: 'ISTIO_DROP',
} as const;

/** The kernel's built-in chains the mesh hooks into. */
export const Builtin = {
  Prerouting: 'PREROUTING',
  Output: 'OUTPUT',
} as const;

/** Prefix shared by every chain the mesh owns, in any Istio version. */
export const MESH_CHAIN_PREFIX = 'ISTIO_';

/** The agent's DNS listener. */
export const DNS_AGENT_PORT = 15053;
export const DNS_PORT = 53;
/** Conntrack zones that keep the proxy's DNS flows apart from the app's (UDP conntrack races). */
export const DNS_ZONE_UPSTREAM = 1;
export const DNS_ZONE_CLIENT = 2;
/** Mark on the proxy's outbound-to-own-pod packets so inbound TPROXY does not skip them. */
export const OUTBOUND_MARK = 1338;

/** Inbound passthrough source: the proxy binds here to reach the app, and that must not be re-captured. */
export const PASSTHROUGH_V4 = '127.0.0.6/32';
export const PASSTHROUGH_V6 = '::6/128';
export const LOOPBACK_V6 = '::1/128';

/** Native nftables names (Istio's istio-nftables). */
export const NftTable = {
  nat: 'istio-proxy-nat',
  mangle: 'istio-proxy-mangle',
  raw: 'istio-proxy-raw',
} as const;

/** The mesh's inet tables by name, in Istio's order. */
export const MESH_NFT_TABLES: readonly string[] = Object.values(NftTable);
