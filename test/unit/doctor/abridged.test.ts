import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { diagnose } from '../../../src/doctor/classify.js';

/**
 * Users cut long lines (`...`), kubectl keeps only the tail of a termination
 * message, terminals and issue trackers wrap. Each case is a real message
 * (wording as the tools print it) cut the ways it arrives; the cause must not
 * change. Cuts are at fixed offsets so a failure names the shape that broke.
 */

interface Case {
  readonly cause: string;
  /** Context lines that come with the message in a paste (a mesh init name, a describe header). */
  readonly context: string;
  readonly message: string;
  /** A cut that removes the one word telling two causes apart may fairly land on the more generic one. */
  readonly headCutAlso?: string;
}

const CASES: readonly Case[] = [
  { cause: 'nat-table-unavailable', context: 'kubectl logs web-1 -c istio-init', message: "2024-05-02T10:01:12.118Z\terror\tCommand error output: xtables parameter problem: iptables-restore: unable to initialize table 'nat'" },
  { cause: 'xtables-lock', context: 'kubectl logs web-1 -c istio-init', message: 'iptables: Another app is currently holding the xtables lock. Perhaps you want to use the -w option? Stopped waiting after 30s.' },
  { cause: 'nftables-unsupported', context: 'kubectl logs web-1 -c linkerd-init', message: 'time="2022-08-01T09:36:47Z" level=info msg="iptables-nft-save v1.8.7 (nf_tables): Could not fetch rule set generation id: Invalid argument"' },
  { cause: 'cni-not-applied', context: 'kubectl logs web-1 -c istio-validation', message: '2023-12-14T04:51:18.982582Z     error   Error connecting to 127.0.0.6:15002: dial tcp 127.0.0.1:0->127.0.0.6:15002: connect: connection refused', headCutAlso: 'validation-failed' },
  { cause: 'permission-denied', context: 'kubectl logs web-1 -c linkerd-init', message: "2019/06/18 14:07:11 < iptables v1.6.0: can't initialize iptables table `nat': Permission denied (you must be root)" },
  { cause: 'binary-missing', context: 'Warning  FailedCreatePodSandBox  kubelet', message: 'plugin type="istio-cni" name="istio-cni" failed (add): could not find nftables binary: exec: "nft": executable file not found in $PATH' },
  { cause: 'control-plane-unready', context: 'kubectl logs web-1 -c istio-proxy', message: '2021-05-12T13:02:56.308633Z     error   xdsproxy        failed to read token file "./var/run/secrets/tokens/istio-token": open ./var/run/secrets/tokens/istio-token: permission denied' },
];

/** The message as pasted: whole; wrapped mid-word; wrapped at a space; only its tail; its head with "...". */
function shapes(message: string): Array<[string, string]> {
  const at = (fraction: number): number => Math.floor(message.length * fraction);
  const space = message.indexOf(' ', at(0.6));
  return [
    ['whole', message],
    ['wrapped mid-word', `${message.slice(0, at(0.72))}\n${message.slice(at(0.72))}`],
    ['wrapped at a space', `${message.slice(0, space)}\n${message.slice(space + 1)}`],
    ['tail only', message.slice(at(0.35))],
    ['head with ...', `${message.slice(0, at(0.85))}...`],
  ];
}

describe('doctor on abridged and wrapped lines', () => {
  for (const c of CASES) {
    for (const [shape, text] of shapes(c.message)) {
      it(`${c.cause}: ${shape}`, () => {
        const d = diagnose(`${c.context}\n${text}\n`);
        const accepted = shape === 'head with ...' && c.headCutAlso !== undefined ? [c.cause, c.headCutAlso] : [c.cause];
        assert.ok(accepted.includes(d.causes[0]?.id ?? ''), `${JSON.stringify(text)} -> ${d.causes.map((x) => `${x.id}:${x.confidence}`).join(', ')}`);
        assert.ok((d.causes[0]?.evidence.length ?? 0) > 0);
      });
    }
  }

  it('does not join two separate records into a match', () => {
    // Each line alone is harmless; glued together they would read as a validator probe that was refused.
    const text = '2026-01-01T00:00:00Z info Error connecting to 127.0.0.6:15002 and retrying in a moment please\n2026-01-01T00:00:01Z info connect: connection refused by an unrelated client\n';
    assert.notEqual(diagnose(text).causes[0]?.id, 'cni-not-applied');
  });
});
