/**
 * Errors that reach the user. Each says what failed, the likely cause in plain
 * words and how to fix it, and carries a stable exit code and the raw tool
 * output, if any.
 */
import { ExitCode } from './cli/exit-codes.js';

export class MeshcapError extends Error {
  constructor(
    readonly exitCode: ExitCode,
    readonly what: string,
    readonly why: string,
    readonly fix: string,
    /** Raw output of the tool that failed, shown last. */
    readonly detail?: string,
    /** The backend in use cannot do it (table or extension missing): another backend might. */
    readonly backendSpecific = false,
  ) {
    super(`${what}: ${why}`);
    this.name = 'MeshcapError';
  }

  /** Multi-line rendering for stderr. */
  describe(): string {
    const lines = [`error: ${this.what}`, `  cause: ${this.why}`, `  fix:   ${this.fix}`];
    if (this.detail && this.detail.trim() !== '') {
      lines.push('  output:', ...this.detail.trimEnd().split('\n').map((line) => `    ${line}`));
    }
    return `${lines.join('\n')}\n`;
  }
}
