/** Shared pieces for tests that drive the capture engine: a config from flags, a quiet logger, no waiting. */
import { parseCaptureConfig } from '../../src/config/parse.js';
import { type CaptureConfig, NO_HOST_FACTS } from '../../src/config/types.js';
import type { EngineOptions } from '../../src/reconcile/engine.js';
import type { Logger } from '../../src/log.js';
import type { System } from '../../src/backend/system.js';

/** istio-init's command line as the sidecar injector writes it. */
export const ISTIO_INIT_ARGS = ['-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '', '-b', '*', '-d', '15090,15021,15020'] as const;

export function configOf(argv: readonly string[], env: Readonly<Record<string, string>> = {}): CaptureConfig {
  return parseCaptureConfig(argv, env, NO_HOST_FACTS);
}

/** A logger that keeps its lines, for assertions about warnings. */
export function memoryLogger(): Logger & { readonly lines: string[] } {
  const lines: string[] = [];
  const keep = (level: string) => (message: string) => lines.push(`${level}: ${message}`);
  return { lines, debug: () => {}, info: keep('info'), warn: keep('warn'), error: keep('error'), fatal: (text) => lines.push(text) };
}

export function engineOptions(sys: System, log: Logger = memoryLogger()): EngineOptions {
  return { sys, log, backoff: async () => {} };
}
