/** Read from package.json at run time so there is one source of truth; single-file builds inline it. */
import { readFileSync } from 'node:fs';

/** Set by the single-file builds (esbuild --define): they have no package.json beside them. */
declare const MESHCAP_BUILD_VERSION: string | undefined;

export function meshcapVersion(): string {
  if (typeof MESHCAP_BUILD_VERSION === 'string') return MESHCAP_BUILD_VERSION;
  const url = new URL('../../package.json', import.meta.url);
  return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
}
