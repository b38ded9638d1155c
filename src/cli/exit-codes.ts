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
