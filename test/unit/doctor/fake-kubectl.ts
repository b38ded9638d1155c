/** A fake kubectl for gather and CLI tests: answers from a table and records every call. */
import type { Runner } from '../../../src/doctor/runner.js';

export type Reply = { code: number; stdout: string; stderr: string };

/** A fake kubectl: answers from a table keyed by the joined arguments, and records every call. */
export function fakeKubectl(answers: Record<string, Reply>, fallback: Reply = { code: 1, stdout: '', stderr: 'error: unexpected call' }) {
  const calls: string[][] = [];
  const runner: Runner = async (cmd, args) => {
    calls.push([cmd, ...args]);
    return answers[args.join(' ')] ?? fallback;
  };
  return { runner, calls };
}

export const POD_JSON = JSON.stringify(
  {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web-1', namespace: 'shop' },
    spec: {
      initContainers: [{ name: 'istio-init' }, { name: 'migrate-db' }],
      containers: [{ name: 'web' }, { name: 'istio-proxy' }],
    },
    status: {
      initContainerStatuses: [{ name: 'istio-init', restartCount: 4, state: { waiting: { reason: 'CrashLoopBackOff' } } }],
    },
  },
  null,
  4,
);

export const ok = (stdout: string): Reply => ({ code: 0, stdout, stderr: '' });
