/**
 * The vocabulary of failure, below every other module: stable exit codes and
 * one hierarchy of errors that reach the user. Each is built from a named
 * object and says what failed, the likely cause in plain words and how to fix
 * it, with a stable exit code, the raw tool output and the cause, if any.
 * The CLI renders them (src/cli/report.ts): as text, or as one JSON line under
 * --log_as_json. Anything else thrown is a bug and keeps its stack.
 */

/** Stable exit codes: documented in the README and in `meshcap --help`. */
export const ExitCode = {
  Ok: 0,
  /** A bug: please report it. */
  Unexpected: 1,
  /**
   * `meshcap status`: the capture is absent, incomplete, in several backends
   * or drifted. It shares its value with Unexpected: that is the documented
   * contract of `meshcap status` and is not renumbered.
   */
  NotHealthy: 1,
  InvalidConfig: 2,
  Unsupported: 3,
  Permission: 4,
  LockTimeout: 5,
  VerifyFailed: 6,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** A finished run of a binary, as an error keeps it (the command, not its input). */
export interface ToolRun {
  readonly file: string;
  readonly args: readonly string[];
  readonly code: number;
  readonly signal: string | null;
}

export interface MeshcapErrorFields {
  readonly exitCode: ExitCode;
  /** What failed, e.g. "applying the IPv4 rules with iptables-nft-restore: permission denied". */
  readonly what: string;
  /** The likely cause, in plain words. */
  readonly why: string;
  /** What to do about it. */
  readonly fix: string;
  /** Raw output of the tool that failed, shown last. */
  readonly output?: string;
  /** The run that failed, when a binary did. */
  readonly run?: ToolRun;
  /** The error this one explains (kept for debugging; not shown to the user). */
  readonly cause?: unknown;
  /** The backend in use cannot do it (a table or extension is missing): the other backend may. */
  readonly otherBackendMayWork?: boolean;
}

const BRAND = Symbol.for('meshcap.error');

export class MeshcapError extends Error {
  readonly exitCode: ExitCode;
  readonly what: string;
  readonly why: string;
  readonly fix: string;
  readonly output?: string;
  readonly run?: ToolRun;
  readonly otherBackendMayWork: boolean;
  readonly [BRAND] = true;

  constructor(fields: MeshcapErrorFields, message = `${fields.what}: ${fields.why}`) {
    super(message, fields.cause === undefined ? undefined : { cause: fields.cause });
    this.name = 'MeshcapError';
    this.exitCode = fields.exitCode;
    this.what = fields.what;
    this.why = fields.why;
    this.fix = fields.fix;
    if (fields.output !== undefined) this.output = fields.output;
    if (fields.run !== undefined) this.run = fields.run;
    this.otherBackendMayWork = fields.otherBackendMayWork ?? false;
  }

  /** The text shown on stderr after `meshcap COMMAND: `, ending with a newline. */
  describe(): string {
    const lines = [`error: ${this.what}`, `  cause: ${this.why}`, `  fix:   ${this.fix}`];
    if (this.output && this.output.trim() !== '') {
      lines.push('  output:', ...this.output.trimEnd().split('\n').map((line) => `    ${line}`));
    }
    return `${lines.join('\n')}\n`;
  }

  /** The error as data: one JSON log line's fields. */
  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      exitCode: this.exitCode,
      what: this.what,
      why: this.why,
      fix: this.fix,
      ...(this.output && this.output.trim() !== '' ? { output: this.output } : {}),
      ...(this.run ? { run: { file: this.run.file, args: this.run.args, code: this.run.code, signal: this.run.signal } } : {}),
      ...(this.otherBackendMayWork ? { otherBackendMayWork: true } : {}),
      ...(this.cause instanceof Error ? { cause: this.cause.message } : {}),
    };
  }
}

/** Recognises meshcap's errors by a brand, so two copies of this module (bundle and dist) agree. */
export function isMeshcapError(value: unknown): value is MeshcapError {
  return typeof value === 'object' && value !== null && (value as { [BRAND]?: boolean })[BRAND] === true;
}

/** A user mistake in a value: exit 2, one line (its message), no stack trace. */
export class InvalidInputError extends MeshcapError {
  constructor(fields: Omit<MeshcapErrorFields, 'exitCode'>, message?: string) {
    super({ ...fields, exitCode: ExitCode.InvalidConfig }, message);
    this.name = 'InvalidInputError';
  }

  override describe(): string {
    return `${this.message}\n`;
  }
}

/** Unknown flag, missing argument and the like: exit 2, one line, and a pointer to --help. */
export class UsageError extends InvalidInputError {
  constructor(message: string) {
    super({ what: message, why: 'the command line is not valid', fix: 'see --help' }, message);
    this.name = 'UsageError';
  }
}
