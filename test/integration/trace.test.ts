/**
 * `meshcap trace` against the kernel: for each scenario a real connection is
 * made in a lab namespace with the capture applied, and the verdict of
 * `meshcap trace` (from the same flags, and from the live rules) must name
 * where the connection really landed: the proxy port that answered, the
 * TPROXY listener, or the addressed server.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { FAR_V4, Lab, OUTSIDE_V4, OUTSIDE_V6, POD_V4, POD_V6, type ProbeAnswer, hasTool, labSkipReason } from '../helpers/netns.js';

const skip = labSkipReason() || (hasTool('socat') ? false : 'skipped: socat is needed for the TPROXY listener');

/** Where a connection ended, in the terms of trace's verdict. */
type Landing = { kind: 'redirect'; port: number } | { kind: 'tproxy'; port: number } | { kind: 'pass' };

interface Scenario {
  readonly name: string;
  readonly direction: 'outbound' | 'inbound';
  readonly dst: string;
  readonly dport: number;
  readonly src?: string;
  readonly as?: { uid: number; gid: number };
  readonly expect: Landing;
}

/** The probe servers answer "<tag> <local address> <local port>"; socat answers "tproxy <addr> <port>". */
function landing(answer: ProbeAnswer): Landing | string {
  if (!answer.ok) return `connection failed: ${answer.error}`;
  const [tag, , portText] = (answer.reply ?? '').split(' ');
  const port = Number(portText);
  if (tag === 'proxy' || tag === 'dns-agent') return { kind: 'redirect', port };
  // TPROXY keeps the original destination as the local address; a REDIRECT to the listener shows its own port.
  if (tag === 'tproxy') return port === 15006 ? { kind: 'redirect', port } : { kind: 'tproxy', port: 15006 };
  if (tag === 'outside-app' || tag === 'pod-app') return { kind: 'pass' };
  return `unexpected answer ${answer.reply}`;
}

function verdictLanding(json: string): Landing | string {
  let parsed: { verdict: { kind: string; port?: number; summary: string } };
  try {
    parsed = JSON.parse(json);
  } catch {
    return `trace printed no JSON: ${json.slice(0, 200)}`;
  }
  const v = parsed.verdict;
  if (v.kind === 'redirect' || v.kind === 'tproxy') return { kind: v.kind, port: v.port! };
  if (v.kind === 'pass') return { kind: 'pass' };
  return `${v.kind}: ${v.summary}`;
}

function traceArgs(s: Scenario): string[] {
  const args = ['--json', '--direction', s.direction, '--dst', s.dst, '--dport', String(s.dport)];
  if (s.src) args.push('--src', s.src);
  if (s.as) args.push('--uid', String(s.as.uid), '--gid', String(s.as.gid));
  return args;
}

/** Starts socat as a transparent listener in the pod and waits (with a deadline) until it listens. */
async function startTproxyListener(lab: Lab, family: 4 | 6): Promise<void> {
  const address = family === 4 ? 'TCP4-LISTEN:15006,ip-transparent,fork,reuseaddr' : 'TCP6-LISTEN:15006,ip-transparent,fork,reuseaddr,ipv6only=1';
  const child = spawn('ip', ['netns', 'exec', lab.pod, 'socat', address, 'SYSTEM:echo tproxy $SOCAT_SOCKADDR $SOCAT_SOCKPORT'], { stdio: 'ignore' });
  lab.services.push({
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('close', () => resolve());
        child.kill('SIGTERM');
      }),
  });
  const deadline = Date.now() + 10_000;
  for (;;) {
    const listening = await lab.exec(lab.pod, ['ss', '-Hltn', `( sport = :15006 )`]);
    if (listening.stdout.includes(family === 4 ? '0.0.0.0:15006' : '[::]:15006')) return;
    if (child.exitCode !== null) throw new Error(`socat exited with ${child.exitCode}`);
    if (Date.now() > deadline) throw new Error('socat did not start listening on 15006 within 10 s');
    await new Promise((resolve) => setImmediate(resolve));
  }
}

interface LabSpec {
  readonly name: string;
  readonly flags: readonly string[];
  readonly tproxy: boolean;
  readonly scenarios: readonly Scenario[];
}

const COMMON = ['-p', '15001', '-z', '15006', '-u', '1337', '-g', '1337', '-i', '*', '-x', '198.18.1.0/24', '-b', '*', '-d', '9090', '-o', '8081', '--ipv6=true'];
const DNS = ['--redirect-dns', '--dns-servers-v4', OUTSIDE_V4, '--dns-servers-v6', ''];
const APP = { uid: 2000, gid: 2000 };
const PROXY = { uid: 1337, gid: 1337 };

const LABS: readonly LabSpec[] = [
  {
    name: 'REDIRECT on iptables-nft, with DNS capture',
    flags: [...COMMON, '-m', 'REDIRECT', ...DNS, '--backend=nft'],
    tproxy: false,
    scenarios: [
      { name: 'app to a remote service is redirected to 15001', direction: 'outbound', dst: OUTSIDE_V4, dport: 8080, expect: { kind: 'redirect', port: 15001 } },
      { name: 'another uid is captured too', direction: 'outbound', dst: OUTSIDE_V4, dport: 8080, as: APP, expect: { kind: 'redirect', port: 15001 } },
      { name: 'the proxy uid 1337 goes out as addressed', direction: 'outbound', dst: OUTSIDE_V4, dport: 8080, as: PROXY, expect: { kind: 'pass' } },
      { name: 'the proxy gid 1337 (other uid) goes out as addressed', direction: 'outbound', dst: OUTSIDE_V4, dport: 8080, as: { uid: 2000, gid: 1337 }, expect: { kind: 'pass' } },
      { name: 'an excluded CIDR (-x) is not captured', direction: 'outbound', dst: FAR_V4, dport: 8080, expect: { kind: 'pass' } },
      { name: 'an excluded outbound port (-o) is not captured', direction: 'outbound', dst: OUTSIDE_V4, dport: 8081, expect: { kind: 'pass' } },
      { name: 'localhost is not captured', direction: 'outbound', dst: '127.0.0.1', dport: 8080, expect: { kind: 'pass' } },
      { name: 'the app calling its own pod IP over lo is not captured', direction: 'outbound', dst: POD_V4, dport: 8080, expect: { kind: 'pass' } },
      { name: 'the proxy calling its own pod IP goes to inbound capture 15006', direction: 'outbound', dst: POD_V4, dport: 8080, as: PROXY, expect: { kind: 'redirect', port: 15006 } },
      { name: 'DNS over TCP to the resolver is redirected to the agent on 15053', direction: 'outbound', dst: OUTSIDE_V4, dport: 53, expect: { kind: 'redirect', port: 15053 } },
      { name: "the proxy's own DNS query goes to the resolver", direction: 'outbound', dst: OUTSIDE_V4, dport: 53, as: PROXY, expect: { kind: 'pass' } },
      { name: 'inbound to an app port is redirected to 15006', direction: 'inbound', src: OUTSIDE_V4, dst: POD_V4, dport: 8080, expect: { kind: 'redirect', port: 15006 } },
      { name: 'an excluded inbound port (-d) reaches the app', direction: 'inbound', src: OUTSIDE_V4, dst: POD_V4, dport: 9090, expect: { kind: 'pass' } },
      { name: 'the tunnel port 15008 is never captured inbound', direction: 'inbound', src: OUTSIDE_V4, dst: POD_V4, dport: 15008, expect: { kind: 'pass' } },
      { name: 'IPv6: app to a remote service is redirected to 15001', direction: 'outbound', dst: OUTSIDE_V6, dport: 8080, expect: { kind: 'redirect', port: 15001 } },
      { name: 'IPv6: the proxy uid goes out as addressed', direction: 'outbound', dst: OUTSIDE_V6, dport: 8080, as: PROXY, expect: { kind: 'pass' } },
      { name: 'IPv6: ::1 is not captured', direction: 'outbound', dst: '::1', dport: 8080, expect: { kind: 'pass' } },
      { name: 'IPv6: inbound to an app port is redirected to 15006', direction: 'inbound', src: OUTSIDE_V6, dst: POD_V6, dport: 8080, expect: { kind: 'redirect', port: 15006 } },
      { name: 'IPv6: an excluded inbound port reaches the app', direction: 'inbound', src: OUTSIDE_V6, dst: POD_V6, dport: 9090, expect: { kind: 'pass' } },
    ],
  },
  {
    name: 'TPROXY on iptables-legacy',
    flags: [...COMMON, '-m', 'TPROXY', '--backend=legacy'],
    tproxy: true,
    scenarios: [
      { name: 'inbound to an app port is handed over by TPROXY', direction: 'inbound', src: OUTSIDE_V4, dst: POD_V4, dport: 8080, expect: { kind: 'tproxy', port: 15006 } },
      { name: 'an excluded inbound port reaches the app', direction: 'inbound', src: OUTSIDE_V4, dst: POD_V4, dport: 9090, expect: { kind: 'pass' } },
      { name: 'outbound app traffic is still redirected to 15001', direction: 'outbound', dst: OUTSIDE_V4, dport: 8080, expect: { kind: 'redirect', port: 15001 } },
      { name: 'the proxy uid goes out as addressed', direction: 'outbound', dst: OUTSIDE_V4, dport: 8080, as: PROXY, expect: { kind: 'pass' } },
      { name: 'an excluded CIDR is not captured', direction: 'outbound', dst: FAR_V4, dport: 8080, expect: { kind: 'pass' } },
      { name: 'the proxy calling its own pod IP is redirected to 15006 (marked 1338 on lo)', direction: 'outbound', dst: POD_V4, dport: 8080, as: PROXY, expect: { kind: 'redirect', port: 15006 } },
      { name: 'the app calling its own pod IP over lo is not captured', direction: 'outbound', dst: POD_V4, dport: 8080, expect: { kind: 'pass' } },
      { name: 'IPv6: inbound to an app port is handed over by TPROXY', direction: 'inbound', src: OUTSIDE_V6, dst: POD_V6, dport: 8080, expect: { kind: 'tproxy', port: 15006 } },
    ],
  },
  {
    name: 'REDIRECT on native nftables',
    flags: [...COMMON, '-m', 'REDIRECT', '--native-nftables'],
    tproxy: false,
    scenarios: [
      { name: 'app to a remote service is redirected to 15001', direction: 'outbound', dst: OUTSIDE_V4, dport: 8080, expect: { kind: 'redirect', port: 15001 } },
      { name: 'the proxy uid goes out as addressed', direction: 'outbound', dst: OUTSIDE_V4, dport: 8080, as: PROXY, expect: { kind: 'pass' } },
      { name: 'inbound to an app port is redirected to 15006', direction: 'inbound', src: OUTSIDE_V4, dst: POD_V4, dport: 8080, expect: { kind: 'redirect', port: 15006 } },
      { name: 'IPv6: app to a remote service is redirected to 15001', direction: 'outbound', dst: OUTSIDE_V6, dport: 8080, expect: { kind: 'redirect', port: 15001 } },
    ],
  },
];

let agreed = 0;

for (const spec of LABS) {
  describe(`trace agrees with the kernel: ${spec.name}`, { skip }, () => {
    let lab: Lab;
    before(async () => {
      lab = Lab.create('trc');
      await lab.serve(lab.outside, [8080, 8081, 53], 'outside-app');
      await lab.serve(lab.pod, [8080, 9090, 15008], 'pod-app');
      await lab.serve(lab.pod, spec.tproxy ? [15001] : [15001, 15006], 'proxy');
      await lab.serve(lab.pod, [15053], 'dns-agent');
      const applied = await lab.meshcap(['apply', ...spec.flags]);
      assert.equal(applied.code, 0, applied.stderr);
      if (spec.tproxy) {
        await startTproxyListener(lab, 4);
        await startTproxyListener(lab, 6);
      }
    });
    after(async () => lab?.destroy());

    for (const scenario of spec.scenarios) {
      test(scenario.name, async () => {
        const from = scenario.direction === 'outbound' ? lab.pod : lab.outside;
        const [answer, fromFlags, fromLive] = await Promise.all([
          lab.connect(from, scenario.dst, scenario.dport, scenario.as ?? {}),
          lab.meshcap(['trace', ...traceArgs(scenario), ...spec.flags]),
          lab.meshcap(['trace', '--live', ...traceArgs(scenario)]),
        ]);
        const real = landing(answer);
        assert.deepEqual(real, scenario.expect, `the kernel: ${JSON.stringify(answer)}`);
        assert.equal(fromFlags.code, 0, fromFlags.stderr);
        assert.equal(fromLive.code, 0, fromLive.stderr);
        assert.deepEqual(verdictLanding(fromFlags.stdout), real, 'trace of the configuration disagrees with the kernel');
        assert.deepEqual(verdictLanding(fromLive.stdout), real, 'trace of the live rules disagrees with the kernel');
        agreed++;
      });
    }
  });
}

after(() => {
  if (!skip) process.stdout.write(`# trace-vs-kernel scenarios in agreement: ${agreed} of ${LABS.reduce((n, l) => n + l.scenarios.length, 0)}\n`);
});
