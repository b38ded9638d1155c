/**
 * Internal helpers the demo and tests run inside a network namespace:
 *   meshcap probe-server --ports 15001,15006 --tag proxy   (prints "ready", serves until stdin closes)
 *   meshcap probe-connect HOST PORT [--uid N --gid N] [--timeout MS]   (prints JSON)
 */
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { INLINE_CONNECT, probeConnect } from '../probe/client.js';
import { startProbeServer } from '../probe/server.js';
import type { Command } from './context.js';
import { ExitCode } from '../errors.js';

export const probeServerCommand: Command = async (argv, ctx) => {
  const { values } = parseArgs({ args: [...argv], options: { ports: { type: 'string' }, tag: { type: 'string' }, host: { type: 'string' } } });
  const ports = (values.ports ?? '').split(',').filter(Boolean).map(Number);
  const server = await startProbeServer(ports, values.tag ?? 'probe', values.host ?? '::');
  ctx.stdout(`ready ${server.ports.join(',')}\n`);
  // Serve until the parent closes our stdin: no orphan survives a killed test.
  await ctx.readStdin();
  await server.close();
  return ExitCode.Ok;
};

export const probeConnectCommand: Command = async (argv, ctx) => {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: { uid: { type: 'string' }, gid: { type: 'string' }, timeout: { type: 'string' }, source: { type: 'string' } },
  });
  const [host, port] = positionals;
  if (!host || !port) {
    ctx.stderr('usage: meshcap probe-connect HOST PORT [--uid N] [--gid N] [--timeout MS] [--source ADDR]\n');
    return ExitCode.InvalidConfig;
  }
  if (values.uid !== undefined) {
    // Connect as another user so the kernel's owner match sees that uid. The code is passed
    // inline: that user may not be able to read meshcap's files (a mode-700 checkout).
    const uid = Number(values.uid);
    const gid = Number(values.gid ?? values.uid);
    const args = ['-e', INLINE_CONNECT, host, port, values.timeout ?? '3000', values.source ?? ''];
    return new Promise((resolve) => {
      let child: ReturnType<typeof spawn>;
      try {
        child = spawn(process.execPath, args, { uid, gid, cwd: '/', stdio: ['ignore', 'pipe', 'inherit'] });
      } catch (error) {
        // setuid/setgid refused (no CAP_SETUID/CAP_SETGID): Node throws instead of emitting 'error'.
        ctx.stdout(`${JSON.stringify({ ok: false, error: `cannot run as uid ${uid}: ${(error as Error).message}` })}\n`);
        resolve(ExitCode.Permission);
        return;
      }
      let out = '';
      child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.on('error', (error) => {
        ctx.stdout(`${JSON.stringify({ ok: false, error: `cannot run as uid ${uid}: ${error.message}` })}\n`);
        resolve(ExitCode.Unexpected);
      });
      child.on('close', (code) => {
        ctx.stdout(out);
        resolve(code ?? ExitCode.Unexpected);
      });
    });
  }
  const result = await probeConnect(host, Number(port), Number(values.timeout ?? 3000), values.source);
  ctx.stdout(`${JSON.stringify(result)}\n`);
  return ExitCode.Ok;
};

