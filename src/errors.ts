/**
 * The vocabulary of failure, below every other module: stable exit codes and
 * the errors that reach the user. Each error says what failed, the likely
 * cause in plain words and how to fix it, and carries a stable exit code and
 * the raw tool output, if any.
 */

/** Stable exit codes: documented in the README and in `meshcap --help`. */
export const ExitCode = {
  Ok: 0,
  Unexpected: 1,
  InvalidConfig: 2,
  Unsupported: 3,
  Permission: 4,
  LockTimeout: 5,
  VerifyFailed: 6,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

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

/** Unknown flag, missing argument and the like. */
export class UsageError extends Error {
  override name = 'UsageError';
}
