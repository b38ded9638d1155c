/**
 * What a command needs from the outside world. The real process provides it in
 * bin/meshcap; tests provide captured streams and a controlled environment.
 */
export interface CommandContext {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** Reads all of standard input (for `-` file arguments). */
  readonly readStdin: () => Promise<Buffer>;
}

export type Command = (argv: readonly string[], ctx: CommandContext) => Promise<number>;
