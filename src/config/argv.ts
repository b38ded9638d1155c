/**
 * Command-line tokenizer with the semantics of Go's pflag (which istio-iptables
 * uses), so existing istio-init command lines parse the same way:
 * `--name=value`, `--name value`, `-x value`, `-xvalue`, `-x=value`, bool flags
 * that take no separate argument (`--flag`, `--flag=false`), grouped short bools,
 * and `--` to end flags. node:util parseArgs reads `-p=15001` as "=15001",
 * which is why this is written out.
 */
import { type FlagSpec, describeFlag } from './flags.js';

export interface ParsedArgv {
  /** Flag key -> last value given (pflag: the last occurrence wins). */
  readonly values: ReadonlyMap<string, string | boolean>;
  readonly positionals: readonly string[];
}

export class ArgvError extends Error {
  constructor(
    message: string,
    readonly flag?: FlagSpec,
  ) {
    super(message);
    this.name = 'ArgvError';
  }
}

const BOOL_TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const BOOL_FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

/** Go's strconv.ParseBool. */
export function parseGoBool(text: string): boolean | undefined {
  if (BOOL_TRUE.has(text)) return true;
  if (BOOL_FALSE.has(text)) return false;
  return undefined;
}

/** A user-typed token inside a one-line message: as is when plain, JSON-quoted when it has spaces or control characters. */
function shown(text: string): string {
  return /^[\x21-\x7e]*$/.test(text) ? text : JSON.stringify(text);
}

export function parseArgv(argv: readonly string[], specs: readonly FlagSpec[]): ParsedArgv {
  const byLong = new Map(specs.map((spec) => [spec.long, spec]));
  const byShort = new Map(specs.filter((spec) => spec.short).map((spec) => [spec.short!, spec]));
  const values = new Map<string, string | boolean>();
  const positionals: string[] = [];

  const setBool = (spec: FlagSpec, text: string | undefined) => {
    if (text === undefined) {
      values.set(spec.key, true);
      return;
    }
    const parsed = parseGoBool(text);
    if (parsed === undefined) {
      throw new ArgvError(`invalid value ${JSON.stringify(text)} for ${describeFlag(spec)}: expected true or false`, spec);
    }
    values.set(spec.key, parsed);
  };

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      const spec = byLong.get(name);
      if (!spec) throw new ArgvError(`unknown flag: ${shown(`--${name}`)}`);
      const inline = eq === -1 ? undefined : arg.slice(eq + 1);
      if (spec.kind === 'bool') {
        setBool(spec, inline);
      } else if (inline !== undefined) {
        values.set(spec.key, inline);
      } else {
        if (i + 1 >= argv.length) throw new ArgvError(`flag needs an argument: ${describeFlag(spec)}`, spec);
        values.set(spec.key, argv[++i]!);
      }
      continue;
    }
    if (arg.startsWith('-') && arg.length > 1) {
      // A group of short flags: bools may be combined; a string flag takes the rest or the next arg.
      for (let j = 1; j < arg.length; j++) {
        const letter = arg[j]!;
        const spec = byShort.get(letter);
        if (!spec) throw new ArgvError(`unknown shorthand flag: ${shown(`'${letter}'`)} in ${shown(arg)}`);
        const rest = arg.slice(j + 1);
        if (spec.kind === 'bool') {
          if (rest.startsWith('=')) {
            setBool(spec, rest.slice(1));
            break;
          }
          setBool(spec, undefined);
          continue;
        }
        if (rest.length > 0) {
          values.set(spec.key, rest.startsWith('=') ? rest.slice(1) : rest);
        } else {
          if (i + 1 >= argv.length) throw new ArgvError(`flag needs an argument: ${describeFlag(spec)}`, spec);
          values.set(spec.key, argv[++i]!);
        }
        break;
      }
      continue;
    }
    positionals.push(arg);
  }
  return { values, positionals };
}
