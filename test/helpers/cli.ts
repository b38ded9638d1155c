/** Runs the real CLI as a separate process, the way users and istio-init run it. */
import { spawnSync } from 'node:child_process';
import { MESHCAP_BIN } from './paths.js';

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export function runCli(args: readonly string[], options: { env?: Record<string, string>; input?: string; cleanEnv?: boolean } = {}): CliResult {
  const base: Record<string, string> = {};
  // Start from a minimal environment so a developer's shell cannot change the outcome.
  for (const key of ['PATH', 'HOME', 'LANG', 'CI']) if (process.env[key] !== undefined) base[key] = process.env[key]!;
  const result = spawnSync(process.execPath, [MESHCAP_BIN, ...args], {
    env: { ...base, ...options.env },
    input: options.input ?? '',
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (result.error) throw result.error;
  return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}
