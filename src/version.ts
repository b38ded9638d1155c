/** Read from package.json at run time so there is one source of truth. */
import { readFileSync } from 'node:fs';

export function meshcapVersion(): string {
  const url = new URL('../../package.json', import.meta.url);
  return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
}
