/** `meshcap audit`: one audit of every injected pod the node's CRI knows, optionally repairing in place. */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { criSandboxes, type SandboxSource } from '../audit/inventory.js';
import { DEFAULT_POLICY, historyFromJson, historyToJson } from '../audit/policy.js';
import { auditJson, renderAuditText } from '../audit/render.js';
import { auditNode } from '../audit/run.js';
import { realSystem } from '../backend/system.js';
import { CriClient } from '../cri/client.js';
import { UsageError } from '../config/parse.js';
import { ExitCode, MeshcapError } from '../errors.js';
import { DEFAULT_SETTINGS } from '../inject/settings.js';
import { CAP_SYS_ADMIN_BIT, hasSysAdmin } from '../audit/privileges.js';
import { parseCommandArgs } from './args.js';
import { defineCommand } from './command.js';
import type { Command, CommandContext } from './context.js';

export const DEFAULT_CRI_SOCKET = '/run/containerd/containerd.sock';
export const DEFAULT_HISTORY = '/run/meshcap/audit-repairs.json';

export const AUDIT_HELP = `Usage: meshcap audit [--cri-socket PATH] [--json] [--repair] [options]

Audits the mesh capture of every pod sandbox the node's container runtime
knows (through its CRI socket) whose annotations show mesh injection, in the
CNI layout or the init-container layout. Each pod's live rules, in every
backend (iptables-legacy, iptables-nft, native nftables), are compared with
the capture its annotations ask for, and the pod gets one state:

  ok                  the desired capture, complete, in one backend
  missing             no mesh chains or jumps in any backend
  partial             some mesh pieces, but not a complete capture
  drifted             a complete capture of another configuration
  duplicated-backend  mesh rules in more than one backend
  foreign-conflict    another tool's rule defeats the capture, or something keeps rewriting it
  unreadable          the pod's namespace or annotations could not be read

Uninjected sandboxes are never listed or touched. Reading opens no connection.

Options:
  --cri-socket PATH     the runtime's CRI socket [default ${DEFAULT_CRI_SOCKET}]
  --json                {"pods":[{"namespace","pod","state","details"}]} (meshcap doctor reads it)
  --repair              repair missing, partial and drifted pods in place with the capture
                        engine and report their new state; foreign-conflict and
                        duplicated-backend are reported, never overwritten
  --history FILE        repairs so far, kept across runs [default ${DEFAULT_HISTORY}]: a pod
                        repaired ${DEFAULT_POLICY.maxRepairs} times within --repair-window is reported foreign-conflict instead
  --repair-window SECS  [default ${DEFAULT_POLICY.windowSeconds}]
  --native-nftables     the injector's install uses native nftables (repairs write nftables)

Exit codes:
  0  every audited pod is ok (after repair, with --repair)
  1  some pod is not ok
  2  invalid usage
  3  the runtime did not answer on the CRI socket
  4  permission denied (entering pod namespaces needs root / CAP_SYS_ADMIN)
`;

/** How the command reaches the runtime: the CRI client in production, a stand-in in tests. */
export type OpenCri = (socket: string) => Promise<SandboxSource & { close(): void }>;

const openRealCri: OpenCri = async (socket) => new CriClient(socket, { timeoutMs: 10_000 });

export function makeAuditCommand(openCri: OpenCri = openRealCri): Command {
  return defineCommand({
    name: 'audit',
    help: AUDIT_HELP,
    async run({ argv, ctx, logger }) {
      const log = logger({});
      const values = parseCommandArgs(argv, {
        'cri-socket': { type: 'string' },
        json: { type: 'boolean' },
        repair: { type: 'boolean' },
        history: { type: 'string' },
        'repair-window': { type: 'string' },
        'native-nftables': { type: 'boolean' },
      });
      const window = values['repair-window'] === undefined ? DEFAULT_POLICY.windowSeconds : Number(values['repair-window']);
      if (!Number.isInteger(window) || window < 1) throw new UsageError(`--repair-window ${values['repair-window']}: must be a whole number of seconds >= 1`);
      const status = readStatus();
      if (status !== undefined && !hasSysAdmin(status)) {
        throw new MeshcapError({
          exitCode: ExitCode.Permission,
          what: "cannot enter the pods' network namespaces",
          why: `the audit needs CAP_SYS_ADMIN (capability ${CAP_SYS_ADMIN_BIT}) for nsenter`,
          fix: 'run meshcap audit as root on the node (the agent runs privileged)',
        });
      }
      const repair = values.repair === true;
      const historyPath = values.history ?? DEFAULT_HISTORY;
      const history = repair ? historyFromJson(readText(historyPath)) : new Map<string, number[]>();
      const cri = await openCri(values['cri-socket'] ?? DEFAULT_CRI_SOCKET);
      let result;
      try {
        result = await auditNode(
          { sys: realSystem(ctx.env), log, sandboxes: () => criSandboxes(cri) },
          { repair, history, policy: { ...DEFAULT_POLICY, windowSeconds: window }, settings: { ...DEFAULT_SETTINGS, nativeNftables: values['native-nftables'] === true } },
        );
      } finally {
        cri.close();
      }
      if (repair) writeHistory(historyPath, historyToJson(history), ctx);
      ctx.stdout(values.json ? auditJson(result.pods) : renderAuditText(result.pods));
      return result.pods.every((p) => p.state === 'ok') ? ExitCode.Ok : ExitCode.NotHealthy;
    },
  });
}

export const auditCommand: Command = makeAuditCommand();

function readStatus(): string | undefined {
  return readText('/proc/self/status');
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Written atomically (temp file + rename): a crash mid-write must not lose the fight record. */
function writeHistory(path: string, text: string, ctx: CommandContext): void {
  try {
    mkdirSync(dirname(path), { recursive: true });
    const temp = `${path}.${process.pid}.tmp`;
    writeFileSync(temp, text, { mode: 0o600 });
    renameSync(temp, path);
  } catch (error) {
    ctx.stderr(`meshcap audit: warning: could not save the repair history to ${path} (${(error as Error).message}): repeated repairs are not counted across runs\n`);
  }
}
