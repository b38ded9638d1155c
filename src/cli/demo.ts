/**
 * `meshcap demo`: the main job on a built-in default, for real. A throwaway pod
 * namespace and an "outside" namespace joined by a veth pair; the default
 * istio-init capture applied in the pod; real connections proving capture and
 * bypass; a re-run as a pruned init container would do; clean; teardown.
 */
import { realSystem, startService, type Service, type System } from '../backend/system.js';
import type { Command, CommandContext } from './context.js';
import { ExitCode } from '../errors.js';
import { selfArgv } from './self.js';

/** What Istio's injection template passes to istio-init by default. */
export const DEFAULT_ISTIO_INIT_ARGS = ['-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '', '-b', '*', '-d', '15090,15021,15020', '--log_output_level=default:info'];

const POD_IP = '198.18.0.2';
const OUTSIDE_IP = '198.18.0.1';
const APP_PORT = 8080;
const EXCLUDED_PORT = 15021;

const HELP = `Usage: meshcap demo [--backend auto|legacy|nft] [--native-nftables] [--keep]

Runs the default istio-init capture for real in two throwaway network
namespaces (198.18.0.0/24), proves with real connections that app traffic lands
on the proxy and the proxy's own traffic does not, re-runs the init as a
restarted init container would, cleans up and removes the namespaces.
Needs root, iproute2 and iptables (or nftables with --native-nftables).
`;

interface Step {
  ok: boolean;
}

export const demoCommand: Command = async (argv, ctx) => {
  if (argv.includes('--help') || argv.includes('-h')) {
    ctx.stdout(HELP);
    return ExitCode.Ok;
  }
  const extra = argv.filter((a) => a !== '--keep');
  const unknown = extra.filter((a) => !/^--(backend=(auto|legacy|nft)|native-nftables)$/.test(a));
  if (unknown.length > 0) {
    ctx.stderr(`meshcap demo: unknown argument ${JSON.stringify(unknown[0])}; see 'meshcap demo --help'\n`);
    return ExitCode.InvalidConfig;
  }
  if (process.getuid?.() !== 0) {
    ctx.stderr('meshcap demo: needs root: it creates network namespaces and writes netfilter rules in them\n  fix: run it with sudo, or as root\n');
    return ExitCode.Permission;
  }
  const sys = realSystem(ctx.env);
  const ip = sys.which('ip');
  if (!ip) {
    ctx.stderr("meshcap demo: the 'ip' binary was not found\n  fix: apt-get install iproute2\n");
    return ExitCode.Unsupported;
  }
  return runDemo(ctx, sys, ip, extra, argv.includes('--keep'));
};

async function runDemo(ctx: CommandContext, sys: System, ip: string, applyExtra: string[], keep: boolean): Promise<number> {
  const say = (text: string) => ctx.stdout(`${text}\n`);
  const id = `${process.pid}`;
  const pod = `meshcap-demo-pod-${id}`;
  const outside = `meshcap-demo-out-${id}`;
  const meshcap = selfArgv();
  const services: Service[] = [];
  const results: Step[] = [];
  const check = (ok: boolean, text: string) => {
    results.push({ ok });
    say(`      ${ok ? '✓' : '✗'} ${text}`);
    return ok;
  };
  const run = async (args: string[]) => sys.run(ip, args);
  const inNs = (ns: string, args: string[]) => sys.run(ip, ['netns', 'exec', ns, ...args]);
  const connect = async (ns: string, host: string, port: number, uid?: number) => {
    const result = await inNs(ns, [...meshcap, 'probe-connect', host, String(port), ...(uid === undefined ? [] : ['--uid', String(uid)])]);
    try {
      return JSON.parse(result.stdout) as { ok: boolean; reply?: string; error?: string };
    } catch {
      return { ok: false, error: result.stderr.trim() || `exit ${result.code}` };
    }
  };
  const shown = (r: { ok: boolean; reply?: string; error?: string }) => (r.ok ? `"${r.reply}"` : `error ${r.error}`);
  const meshRuleCount = async () => {
    const saves = await Promise.all(['iptables-legacy-save', 'iptables-nft-save'].map((b) => inNs(pod, [b])));
    const nft = await inNs(pod, ['nft', 'list', 'ruleset', 'inet']);
    const lines = saves.map((s) => s.stdout).join('\n').split('\n');
    return {
      iptables: lines.filter((l) => /^-A ISTIO_/.test(l)).length,
      nft: (nft.stdout.match(/table inet istio-proxy-/g) ?? []).length,
      text: saves.map((s) => s.stdout.replace(/^#.*\n/gm, '').replace(/\[\d+:\d+\]/g, '')).join('') + nft.stdout.replace(/counter packets \d+ bytes \d+/g, 'counter'),
    };
  };

  say('meshcap demo: the default istio-init capture, for real, in a throwaway network namespace\n');
  try {
    say(`[1/6] Creating namespaces ${pod} (the pod, ${POD_IP}) and ${outside} (the outside, ${OUTSIDE_IP}), joined by a veth pair`);
    for (const args of [
      ['netns', 'add', pod],
      ['netns', 'add', outside],
      ['-n', pod, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', outside],
      ['-n', pod, 'addr', 'add', `${POD_IP}/24`, 'dev', 'eth0'],
      ['-n', outside, 'addr', 'add', `${OUTSIDE_IP}/24`, 'dev', 'eth0'],
      ['-n', pod, 'link', 'set', 'lo', 'up'],
      ['-n', pod, 'link', 'set', 'eth0', 'up'],
      ['-n', outside, 'link', 'set', 'lo', 'up'],
      ['-n', outside, 'link', 'set', 'eth0', 'up'],
    ]) {
      const result = await run(args);
      if (result.code !== 0) throw new Error(`ip ${args.join(' ')}: ${result.stderr.trim()}`);
    }
    const serve = async (ns: string, ports: number[], tag: string) => {
      const service = startService(ip, ['netns', 'exec', ns, ...meshcap, 'probe-server', '--ports', ports.join(','), '--tag', tag]);
      services.push(service);
      await service.waitForLine('ready', 10_000);
    };
    await serve(outside, [APP_PORT], 'outside-app');
    await serve(pod, [15001, 15006], 'proxy');
    await serve(pod, [EXCLUDED_PORT], 'pod-health-port');
    const before = await connect(pod, OUTSIDE_IP, APP_PORT);
    check(before.ok && before.reply!.startsWith('outside-app'), `pod -> ${OUTSIDE_IP}:${APP_PORT} answers ${shown(before)} (no capture yet)`);

    const applyArgs = ['istio-iptables', ...DEFAULT_ISTIO_INIT_ARGS, ...applyExtra];
    say(`\n[2/6] Applying the default istio-init capture in the pod:\n      meshcap ${applyArgs.map((a) => (a === '' || a === '*' ? `'${a}'` : a)).join(' ')}`);
    const started = Date.now();
    const applied = await inNs(pod, [...meshcap, ...applyArgs]);
    const tookMs = Date.now() - started;
    const afterApply = await meshRuleCount();
    check(applied.code === 0, `exit ${applied.code} in ${tookMs} ms; ${afterApply.iptables} rules in ISTIO_* chains, ${afterApply.nft} nftables mesh tables`);
    for (const line of applied.stderr.trim().split('\n').filter(Boolean)) say(`        ${line}`);

    say('\n[3/6] Proving the capture with real connections');
    const app = await connect(pod, OUTSIDE_IP, APP_PORT);
    check(app.ok && app.reply!.startsWith('proxy') && app.reply!.endsWith(' 15001'), `app (uid 0) -> ${OUTSIDE_IP}:${APP_PORT} landed on the proxy's outbound port 15001: ${shown(app)}`);
    const proxy = await connect(pod, OUTSIDE_IP, APP_PORT, 1337);
    check(proxy.ok && proxy.reply!.startsWith('outside-app'), `proxy (uid 1337) -> ${OUTSIDE_IP}:${APP_PORT} bypassed the capture and reached the outside app: ${shown(proxy)}`);
    const inbound = await connect(outside, POD_IP, APP_PORT);
    check(inbound.ok && inbound.reply!.startsWith('proxy') && inbound.reply!.endsWith(' 15006'), `outside -> pod ${POD_IP}:${APP_PORT} landed on the proxy's inbound port 15006: ${shown(inbound)}`);
    const excluded = await connect(outside, POD_IP, EXCLUDED_PORT);
    check(excluded.ok && excluded.reply!.startsWith('pod-health-port'), `outside -> pod ${POD_IP}:${EXCLUDED_PORT} (excluded with -d) reached the pod's own listener: ${shown(excluded)}`);

    say('\n[4/6] Re-running the init exactly as before, as the kubelet does when container GC removed the exited istio-init');
    const rerun = await inNs(pod, [...meshcap, ...applyArgs]);
    const afterRerun = await meshRuleCount();
    const noop = /already in place, nothing to do/.test(rerun.stderr);
    check(rerun.code === 0 && noop, `exit ${rerun.code}: ${noop ? 'already in place, nothing to do' : rerun.stderr.trim().split('\n').pop()}`);
    check(afterRerun.text === afterApply.text, 'the rules are byte-for-byte what the first run wrote (Istio < 1.24 failed here: "iptables-restore: line 2 failed")');
    const again = await connect(pod, OUTSIDE_IP, APP_PORT);
    check(again.ok && again.reply!.endsWith(' 15001'), `app traffic is still captured: ${shown(again)}`);

    say('\n[5/6] Cleaning: meshcap clean');
    const cleaned = await inNs(pod, [...meshcap, 'clean']);
    const afterClean = await meshRuleCount();
    check(cleaned.code === 0 && afterClean.iptables === 0 && afterClean.nft === 0, `exit ${cleaned.code}; ${afterClean.iptables} mesh rules and ${afterClean.nft} mesh tables left`);
    const direct = await connect(pod, OUTSIDE_IP, APP_PORT);
    check(direct.ok && direct.reply!.startsWith('outside-app'), `pod -> ${OUTSIDE_IP}:${APP_PORT} reaches the outside app directly again: ${shown(direct)}`);
  } catch (error) {
    check(false, `demo step failed: ${(error as Error).message}`);
  } finally {
    await Promise.all(services.map((s) => s.stop()));
    if (keep) {
      say(`\n[6/6] Keeping the namespaces (--keep): ip netns exec ${pod} iptables-save`);
    } else {
      say('\n[6/6] Removing the namespaces');
      for (const ns of [pod, outside]) await run(['netns', 'del', ns]);
    }
  }
  const failed = results.filter((r) => !r.ok).length;
  say(failed === 0 ? `\nAll ${results.length} checks passed.` : `\n${failed} of ${results.length} checks failed.`);
  return failed === 0 ? ExitCode.Ok : ExitCode.VerifyFailed;
}
