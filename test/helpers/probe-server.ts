/** `meshcap probe-server` started inside a network namespace, for tests that need real peers. */
import { spawn } from 'node:child_process';
import { MESHCAP_BIN } from './paths.js';

export interface ProbeServer {
  /** Ends the server (stdin closed; SIGKILL after 3 s) and resolves once it has exited. */
  stop(): Promise<void>;
}

/**
 * Starts a probe server under `enter` (a command prefix that enters the namespace, e.g.
 * `['ip', 'netns', 'exec', NAME]` or `['nsenter', '--net=PATH', '--']`); resolves once it prints
 * `ready`. It answers each connection with `<tag> <local addr> <local port>`.
 */
export async function startProbeServer(enter: readonly string[], ports: readonly number[], tag: string, timeoutMs = 20_000): Promise<ProbeServer> {
  const [file, ...prefix] = enter;
  const child = spawn(file!, [...prefix, process.execPath, MESHCAP_BIN, 'probe-server', '--ports', ports.join(','), '--tag', tag], { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const deadline = setTimeout(() => reject(new Error(`probe server ${tag} did not start within ${timeoutMs} ms: ${output}`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('ready')) {
        clearTimeout(deadline);
        resolve();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('close', () => {
      clearTimeout(deadline);
      reject(new Error(`probe server ${tag} exited: ${output}`));
    });
  });
  return {
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
        child.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
        child.stdin.end();
      }),
  };
}

/** A probe server inside a netns given by path, optionally as another uid (and the same gid). */
export function serveIn(netnsPath: string, ports: readonly number[], tag: string, options: { uid?: number } = {}): Promise<ProbeServer> {
  const as = options.uid !== undefined ? [`--setuid=${options.uid}`, `--setgid=${options.uid}`] : [];
  return startProbeServer(['nsenter', `--net=${netnsPath}`, ...as, '--'], ports, tag);
}
