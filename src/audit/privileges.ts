/** Entering another network namespace (setns) needs CAP_SYS_ADMIN. Pure. */
import { effectiveCapabilities, hasCapability } from '../preflight/checks.js';

export const CAP_SYS_ADMIN_BIT = 21;

/** `status`: /proc/self/status. True when it cannot be told (not Linux procfs): nsenter will say. */
export function hasSysAdmin(status: string): boolean {
  const caps = effectiveCapabilities(status);
  return caps === undefined || hasCapability(caps, CAP_SYS_ADMIN_BIT);
}
