/**
 * The one injectable seam between meshcap and the machine: running binaries,
 * finding them on PATH and reading kernel files. realSystem() is the machine;
 * test/helpers/fake-netfilter.ts is a faithful fake of netfilter and iproute2
 * behind the same interface. Nothing else in src/ spawns processes (the
 * demo's probe servers aside, startService below).
 */
import { type SpawnSyncReturns, spawn, spawnSync } from 'node:child_process';
import { accessSync, closeSync, constants, fstatSync, openSync, readFileSync, readSync, readlinkSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { Writable } from 'node:stream';
import { StreamedText } from '../render/streamed-text.js';

export interface RunOptions {
  /**
   * Written to the child's stdin (restore input goes this way, never through a temp file).
   * A StreamedText is written through a pipe chunk by chunk as it renders, so the child
   * reads the first lines while the rest are made (with `background`). A DeferredInput is not
   * known yet: a background child is started now and fed the moment it is given (EarlyWriter);
   * elsewhere the child starts then.
   */
  readonly input?: RunInput | DeferredInput;
  readonly timeoutMs?: number;
  readonly env?: Readonly<Record<string, string>>;
  /** Run as this user and group (needs root); the owner match sees them. */
  readonly uid?: number;
  readonly gid?: number;
  /**
   * The child writes much output without buffering (nft writes each token of a
   * listing with its own write()): collect stdout through a scratch file, not
   * the default socketpair, where 5000 rules cost ~40 ms more per listing.
   */
  readonly largeOutput?: boolean;
  /**
   * The caller works while the child runs (it awaits the result later): stdin,
   * stdout and stderr are scratch files, so the child never waits for this
   * process to turn its event loop. With blocking children (the init path) this
   * is the one child that runs alongside meshcap's own work.
   */
  readonly background?: boolean;
}

export type RunInput = string | StreamedText;

/** An input given after its child started: listeners run at once when it is, so feeding starts in the giver's turn. */
export class DeferredInput {
  #given: { readonly input: RunInput } | undefined;
  readonly #listeners: ((input: RunInput) => void)[] = [];

  give(input: RunInput): void {
    if (this.#given) throw new Error('internal: a deferred input is given once');
    this.#given = { input };
    for (const listener of this.#listeners.splice(0)) listener(input);
  }

  whenGiven(listener: (input: RunInput) => void): void {
    if (this.#given) listener(this.#given.input);
    else this.#listeners.push(listener);
  }
}

/** The input once known (a System that takes it whole waits for a deferred one). */
export function knownInput(input: RunOptions['input']): Promise<RunInput | undefined> {
  return input instanceof DeferredInput ? new Promise((resolve) => input.whenGiven(resolve)) : Promise.resolve(input);
}

/** The input as one string, for a child that takes it whole (spawnSync, fakes). */
export function inputText(input: RunInput | undefined): string | undefined {
  return input instanceof StreamedText ? input.text() : input;
}

export interface RunResult {
  readonly file: string;
  readonly args: readonly string[];
  /** Exit code; 127 when the binary could not be started. */
  readonly code: number;
  readonly signal: string | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The binary does not exist (ENOENT) or is not executable (EACCES). */
  readonly notFound: boolean;
  /** The child could not be started at all: the errno code (e.g. EPERM when switching uid without CAP_SETUID). */
  readonly spawnError?: string;
}

export interface System {
  run(file: string, args: readonly string[], options?: RunOptions): Promise<RunResult>;
  /** Absolute path of a binary on PATH (resolved the way Istio resolves it), or undefined. */
  which(name: string): string | undefined;
  /** A file's text, or undefined when it cannot be read. */
  readFile(path: string): string | undefined;
  /** A file's bytes (e.g. /proc/config.gz), or undefined when it cannot be read. */
  readBytes(path: string): Buffer | undefined;
  /** A symbolic link's target (e.g. /proc/self/ns/net -> net:[4026531833]), or undefined. */
  readLink(path: string): string | undefined;
}

export interface RealSystemOptions {
  /**
   * Run children with spawnSync: for a one-shot command whose children run one
   * after another anyway (the init path), it saves two socket streams and
   * their event-loop turns per child. Parallel run() calls then run in turn.
   */
  readonly blocking?: boolean;
}

export function realSystem(env: Readonly<Record<string, string | undefined>> = process.env, systemOptions: RealSystemOptions = {}): System {
  const whichCache = new Map<string, string | undefined>();
  return {
    run: (file, args, options = {}) => {
      if (!systemOptions.blocking) return runProcess(file, args, options, env);
      if (options.background) return runProcessBackground(file, args, options, env);
      // A blocking child takes its input whole: it starts once the input is known.
      const input = options.input;
      if (input instanceof DeferredInput) return knownInput(input).then((known) => runProcessSync(file, args, { ...options, input: known }, env));
      return Promise.resolve(runProcessSync(file, args, { ...options, input }, env));
    },
    which(name) {
      if (!whichCache.has(name)) whichCache.set(name, findOnPath(name, env.PATH ?? ''));
      return whichCache.get(name);
    },
    readFile(path) {
      try {
        return readFileSync(path, 'utf8');
      } catch {
        return undefined;
      }
    },
    readBytes(path) {
      try {
        return readFileSync(path);
      } catch {
        return undefined;
      }
    },
    readLink(path) {
      try {
        return readlinkSync(path);
      } catch {
        return undefined;
      }
    },
  };
}

export function findOnPath(name: string, path: string): string | undefined {
  if (name.includes('/')) return isExecutable(name) ? name : undefined;
  for (const dir of path.split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function isExecutable(path: string): boolean {
  // statSync without throwing: a miss on each PATH entry is the common case, and exceptions are slow.
  const stat = statSync(path, { throwIfNoEntry: false });
  if (!stat?.isFile() || (stat.mode & 0o111) === 0) return false;
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

let scratchCounter = 0;

/**
 * An unlinked read-write file for a child's stdout, or undefined where none can
 * be made (a read-only root without /dev/shm): then the plain pipe is used.
 */
function openScratch(): number | undefined {
  for (const dir of ['/dev/shm', tmpdir()]) {
    const path = join(dir, `.meshcap-${process.pid}-${++scratchCounter}`);
    try {
      // O_EXCL: never follow a planted file or link in a shared directory.
      const fd = openSync(path, 'wx+', 0o600);
      unlinkSync(path);
      return fd;
    } catch {
      // try the next place
    }
  }
  return undefined;
}

/** Reads and closes a scratch file written by a child. */
function drainScratch(fd: number): string {
  try {
    const size = fstatSync(fd).size;
    const buffer = Buffer.allocUnsafe(size);
    let read = 0;
    while (read < size) {
      const n = readSync(fd, buffer, read, size - read, read);
      if (n === 0) break;
      read += n;
    }
    return buffer.toString('utf8', 0, read);
  } finally {
    closeSync(fd);
  }
}

/** A scratch file holding `text`, its offset at the start (pwrite does not move it), for a child's stdin. */
function scratchWith(text: string): number | undefined {
  const fd = openScratch();
  if (fd === undefined) return undefined;
  const bytes = Buffer.from(text, 'utf8');
  let written = 0;
  try {
    while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written, written);
  } catch {
    closeSync(fd);
    return undefined;
  }
  return fd;
}

function spawnOptions(options: RunOptions, env: Readonly<Record<string, string | undefined>>, stdout: number | 'pipe') {
  return {
    env: { ...env, ...options.env, LC_ALL: 'C' },
    stdio: [options.input === undefined ? 'ignore' : 'pipe', stdout, 'pipe'] as ['ignore' | 'pipe', number | 'pipe', 'pipe'],
    timeout: options.timeoutMs ?? 120_000,
    ...(options.uid === undefined ? {} : { uid: options.uid, gid: options.gid ?? options.uid, cwd: '/' }),
  };
}

function runProcessSync(
  file: string,
  args: readonly string[],
  options: RunOptions & { readonly input?: RunInput },
  env: Readonly<Record<string, string | undefined>>,
): RunResult {
  const scratch = options.largeOutput ? openScratch() : undefined;
  let result: SpawnSyncReturns<Buffer>;
  try {
    result = spawnSync(file, args, {
      ...spawnOptions(options, env, scratch ?? 'pipe'),
      ...(options.input === undefined ? {} : { input: inputText(options.input) }),
      maxBuffer: 1 << 30,
    });
  } catch (error) {
    // As with spawn: some failures (setuid/setgid refused, EPERM) throw instead of being returned.
    if (scratch !== undefined) closeSync(scratch);
    const code = (error as NodeJS.ErrnoException).code ?? 'unknown';
    return { file, args, code: 127, signal: null, stdout: '', stderr: `${file}: ${(error as Error).message}`, notFound: false, spawnError: code };
  }
  const stdout = scratch === undefined ? (result.stdout?.toString('utf8') ?? '') : drainScratch(scratch);
  const error = result.error as NodeJS.ErrnoException | undefined;
  // A timeout is reported as an error too, but that child did start: it has a pid and a signal.
  const failedToStart = error !== undefined && !result.pid;
  const stderr = result.stderr?.toString('utf8') ?? '';
  return {
    file,
    args,
    code: failedToStart ? 127 : (result.status ?? 128),
    signal: result.signal,
    stdout,
    stderr: failedToStart && !stderr ? `${file}: ${error.message}` : stderr,
    notFound: failedToStart && (error.code === 'ENOENT' || error.code === 'EACCES'),
    ...(failedToStart ? { spawnError: error.code ?? 'unknown' } : {}),
  };
}

/**
 * A child whose stdio are all scratch files (RunOptions.background): it reads its
 * input and writes its output at its own pace while this process computes; only
 * its exit is waited for. Where no scratch file can be made, the plain pipes.
 */
function runProcessBackground(
  file: string,
  args: readonly string[],
  options: RunOptions,
  env: Readonly<Record<string, string | undefined>>,
): Promise<RunResult> {
  // Through a pipe: an input rendered as it is written, or one not known yet. A known string
  // goes in a scratch file, which the child reads at its own pace.
  const piped = options.input instanceof StreamedText || options.input instanceof DeferredInput ? options.input : undefined;
  const input = options.input === undefined ? 'ignore' : piped ? 'pipe' : scratchWith(options.input as string);
  const out = openScratch();
  const err = openScratch();
  const opened = [input, out, err].filter((fd): fd is number => typeof fd === 'number');
  if (input === undefined || out === undefined || err === undefined) {
    opened.forEach((fd) => closeSync(fd));
    return runProcess(file, args, options, env);
  }
  return new Promise((resolve) => {
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(file, args, { ...spawnOptions(options, env, out), stdio: [input, out, err] });
    } catch (error) {
      opened.forEach((fd) => closeSync(fd));
      const code = (error as NodeJS.ErrnoException).code ?? 'unknown';
      resolve({ file, args, code: 127, signal: null, stdout: '', stderr: `${file}: ${(error as Error).message}`, notFound: false, spawnError: code });
      return;
    }
    // The child has its own copy of stdin.
    if (typeof input === 'number') closeSync(input);
    let spawnError: NodeJS.ErrnoException | undefined;
    child.on('error', (error: NodeJS.ErrnoException) => {
      spawnError = error;
    });
    child.on('close', (code, signal) => resolve(closedResult(file, args, code, signal, drainScratch(out), drainScratch(err), spawnError)));
    if (piped && child.stdin) startFeed(child.stdin, piped);
  });
}

/** Feeds a child's stdin with its input now, or the moment a deferred one is given. */
function startFeed(stdin: Writable, input: StreamedText | DeferredInput): void {
  if (input instanceof DeferredInput) input.whenGiven((given) => void feed(stdin, given));
  else void feed(stdin, input);
}

/**
 * Writes an input, a streamed one as it renders: each chunk goes to the pipe at once while the
 * pipe has room (the child reads meanwhile), else after it drains. A child that stops reading
 * (it failed on a line) ends the feed; its exit and stderr tell why.
 */
async function feed(stdin: Writable, input: RunInput): Promise<void> {
  let stopped = false;
  stdin.on('error', () => {
    stopped = true;
  });
  stdin.on('close', () => {
    stopped = true;
  });
  try {
    for (const chunk of typeof input === 'string' ? [input] : input.chunks()) {
      if (stopped) break;
      if (!stdin.write(chunk)) await drained(stdin);
    }
  } finally {
    stdin.end();
  }
}

function drained(stdin: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stdin.off('drain', done);
      stdin.off('close', done);
      resolve();
    };
    stdin.on('drain', done);
    stdin.on('close', done);
  });
}

/** What a child that has closed gives back; a child that never started is 127 with the error as its stderr. */
function closedResult(
  file: string,
  args: readonly string[],
  code: number | null,
  signal: string | null,
  stdout: string,
  stderr: string,
  spawnError: NodeJS.ErrnoException | undefined,
): RunResult {
  return {
    file,
    args,
    code: spawnError ? 127 : (code ?? 128),
    signal,
    stdout,
    stderr: spawnError && !stderr ? `${file}: ${spawnError.message}` : stderr,
    notFound: spawnError?.code === 'ENOENT' || spawnError?.code === 'EACCES',
    ...(spawnError ? { spawnError: spawnError.code ?? 'unknown' } : {}),
  };
}

function runProcess(
  file: string,
  args: readonly string[],
  options: RunOptions,
  env: Readonly<Record<string, string | undefined>>,
): Promise<RunResult> {
  return new Promise((resolve) => {
    let child: ReturnType<typeof spawn>;
    const scratch = options.largeOutput ? openScratch() : undefined;
    try {
      child = spawn(file, args, spawnOptions(options, env, scratch ?? 'pipe'));
    } catch (error) {
      // Node throws, rather than emitting 'error', for some failures: setuid/setgid refused (EPERM) among them.
      if (scratch !== undefined) closeSync(scratch);
      const code = (error as NodeJS.ErrnoException).code ?? 'unknown';
      resolve({ file, args, code: 127, signal: null, stdout: '', stderr: `${file}: ${(error as Error).message}`, notFound: false, spawnError: code });
      return;
    }
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => err.push(chunk));
    let spawnError: NodeJS.ErrnoException | undefined;
    child.on('error', (error: NodeJS.ErrnoException) => {
      spawnError = error;
    });
    // A child that exits before reading stdin must not crash us with EPIPE.
    child.stdin?.on('error', () => {});
    if ((options.input instanceof StreamedText || options.input instanceof DeferredInput) && child.stdin) startFeed(child.stdin, options.input);
    else child.stdin?.end(options.input);
    child.on('close', (code, signal) => {
      const stdout = scratch === undefined ? Buffer.concat(out).toString('utf8') : drainScratch(scratch);
      resolve(closedResult(file, args, code, signal, stdout, Buffer.concat(err).toString('utf8'), spawnError));
    });
  });
}

export interface Service {
  /** Resolves with the first stdout line starting with `prefix`; rejects when the process exits first or the deadline passes. */
  waitForLine(prefix: string, timeoutMs: number): Promise<string>;
  /** Closes its stdin (our services exit on that) and kills it if it lingers. */
  stop(): Promise<void>;
}

/** A long-running helper process (the demo's probe servers), stopped by closing its stdin. */
export function startService(file: string, args: readonly string[]): Service {
  const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let buffer = '';
  let exited = false;
  const waiters: (() => void)[] = [];
  const wake = () => waiters.splice(0).forEach((w) => w());
  child.stdout.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    wake();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    wake();
  });
  child.on('error', () => {
    exited = true;
    wake();
  });
  child.on('close', () => {
    exited = true;
    wake();
  });
  child.stdin.on('error', () => {});
  return {
    waitForLine(prefix, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      return new Promise((resolve, reject) => {
        const check = () => {
          const line = buffer.split('\n').find((l) => l.startsWith(prefix));
          if (line !== undefined) return resolve(line);
          if (exited) return reject(new Error(`${file} ${args.join(' ')} exited: ${buffer.trim()}`));
          if (Date.now() > deadline) return reject(new Error(`${file} ${args.join(' ')}: no '${prefix}' within ${timeoutMs} ms`));
          waiters.push(check);
          setTimeout(wake, Math.max(0, deadline - Date.now()) + 1).unref();
        };
        check();
      });
    },
    stop() {
      if (exited) return Promise.resolve();
      return new Promise((resolve) => {
        const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
        child.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
        child.stdin.end();
      });
    },
  };
}
