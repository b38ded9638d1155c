/** explain (text and Mermaid) and status's pure parts: derived flags round-trip, completeness. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseCaptureConfig } from '../../src/config/parse.js';
import type { HostFacts } from '../../src/config/types.js';
import { explainConfig, renderExplainText, renderMermaid } from '../../src/explain/explain.js';
import { currentView, desiredView, diffViews } from '../../src/state/iptables-view.js';
import { parseSave } from '../../src/state/iptables-save.js';
import { buildRuleset } from '../../src/rules/build.js';
import { rulesForFamily } from '../../src/rules/model.js';
import { completenessProblems } from '../../src/status/analyze.js';
import { saveTextOf } from '../helpers/sim.js';
import { deriveConfig, derivedArgs } from '../../src/status/derive.js';
import { simRulesetFromConfig } from '../../src/trace/from-config.js';
import { simRulesetFromSave } from '../../src/trace/from-save.js';
import type { SimRuleset } from '../../src/trace/model.js';

const FACTS: HostFacts = { interfaceAddresses: () => ['198.18.0.2'], resolvConf: () => 'nameserver 198.18.0.1\n', lookupUid: () => undefined };
const NO_FACTS: HostFacts = { interfaceAddresses: () => [], resolvConf: () => '', lookupUid: () => undefined };
const DEFAULT = ['-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '', '-b', '*', '-d', '15090,15021,15020', '--ipv6=false'];

describe('explain', () => {
  test('names what is captured and every exemption with its reason', () => {
    const config = parseCaptureConfig([...DEFAULT, '-x', '10.0.0.0/8', '-o', '9001', '-c', 'eth9', '--redirect-dns'], {}, FACTS);
    const text = renderExplainText(explainConfig(config, buildRuleset(config)), 'flags');
    for (const expected of [
      /outbound TCP to every destination is redirected to the proxy on port 15001/,
      /inbound TCP to every port except 15090, 15021, 15020/,
      /uid 1337, gid 1337/,
      /127\.0\.0\.6\/32 over lo/,
      /inbound port 15008/,
      /10\.0\.0\.0\/8 \(-x\)/,
      /port 9001 \(-o\)/,
      /interface eth9 \(-c\)/,
      /DNS over UDP and TCP port 53 to 198\.18\.0\.1 is redirected to the agent on port 15053/,
      /-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN\n\s+why: the proxy's own traffic/,
    ]) assert.match(text, expected);
  });

  test('TPROXY explains the mark and the routing it needs', () => {
    const config = parseCaptureConfig([...DEFAULT, '-m', 'TPROXY'], {}, FACTS);
    const text = renderExplainText(explainConfig(config, buildRuleset(config)), '');
    assert.match(text, /ip rule fwmark 1337 lookup 133/);
    assert.match(text, /handed to the proxy on port 15006 by TPROXY/);
  });

  for (const mode of ['REDIRECT', 'TPROXY']) {
    test(`mermaid (${mode}) is a well-formed flowchart: declared ids, edges between declared nodes, hooks lead to chains`, () => {
      const config = parseCaptureConfig([...DEFAULT, '-m', mode, '--redirect-dns', '--drop-invalid'], {}, FACTS);
      const text = renderMermaid(buildRuleset(config), 'ipv4');
      const lines = text.trimEnd().split('\n');
      assert.equal(lines[0], 'flowchart LR');
      const declared = new Set<string>();
      const edges: [string, string][] = [];
      for (const line of lines.slice(1)) {
        const node = /^ {2}([A-Za-z][A-Za-z0-9_]*)(\["[^"]*"\]|\(\["[^"]*"\]\)|\{\{"[^"]*"\}\}|\[\/"[^"]*"\/\])$/.exec(line);
        const edge = /^ {2}([A-Za-z][A-Za-z0-9_]*) (?:-->|-- "[^"|]*" -->|-\. "[^"|]*" \.->) ([A-Za-z][A-Za-z0-9_]*)$/.exec(line);
        assert.ok(node || edge, `not a Mermaid node or edge line: ${line}`);
        if (node) declared.add(node[1]!);
        if (edge) edges.push([edge[1]!, edge[2]!]);
      }
      for (const [from, to] of edges) assert.ok(declared.has(from) && declared.has(to), `edge ${from} -> ${to} uses an undeclared node`);
      assert.ok(edges.some(([from, to]) => from === 'hook_OUTPUT' && to.endsWith('_OUTPUT')));
      assert.ok(edges.some(([, to]) => to === 't_redirect_15001'));
      assert.ok(edges.some(([, to]) => to === (mode === 'TPROXY' ? 't_tproxy_15006' : 't_redirect_15006')));
      assert.ok(!declared.has('end'), "'end' is a Mermaid keyword");
    });
  }
});

/** The save text the kernel would hold for a config (one family). */
function liveSave(args: string[], family: 'ipv4' | 'ipv6'): string {
  return saveTextOf(simRulesetFromConfig(buildRuleset(parseCaptureConfig(args, {}, FACTS)), family));
}

describe('status: derived flags rebuild the very same rules', () => {
  const CASES: string[][] = [
    DEFAULT,
    ['-p', '15001', '-z', '15006', '-u', '1337', '-g', '1338', '-m', 'TPROXY', '-i', '10.0.0.0/8', '-x', '10.1.0.0/16', '-b', '8080,9090', '-q', '9000', '-o', '9001,9002', '-c', 'eth9', '--ipv6=true', '-t', '1400'],
    ['-u', '1337', '-i', '*', '-b', '*', '-d', '15090', '--redirect-dns', '--dns-servers-v4', '198.18.0.1', '--dns-servers-v6', '2001:db8::53', '--ipv6=true', '--drop-invalid', '-k', 'kv0'],
    ['-u', '1337', '-i', '*', '-b', '', '--redirect-dns', '--capture-all-dns', '--ipv6=false', '-e', '15009'],
  ];
  for (const args of CASES) {
    test(args.join(' '), () => {
      const ipv6 = args.includes('--ipv6=true');
      const v4 = simRulesetFromSave(liveSave(args, 'ipv4'), 'ipv4', 'live');
      const v6 = ipv6 ? simRulesetFromSave(liveSave(args, 'ipv6'), 'ipv6', 'live') : undefined;
      const mark = Number(args[args.indexOf('-t') + 1] ?? 1337) || 1337;
      const derived = deriveConfig(v4, v6, new Map([[mark, '133']]));
      assert.ok(derived.complete, JSON.stringify(derived.flags));
      const rebuilt = buildRuleset(parseCaptureConfig(derivedArgs(derived), derived.env, NO_FACTS));
      for (const family of ipv6 ? (['ipv4', 'ipv6'] as const) : (['ipv4'] as const)) {
        const live = currentView(parseSave(liveSave(args, family)));
        assert.deepEqual(diffViews(desiredView(rulesForFamily(rebuilt, family), family), live), [], `${family}: ${derivedArgs(derived).join(' ')}`);
      }
    });
  }
});

describe('status: completeness', () => {
  const rs = (text: string): SimRuleset => simRulesetFromSave(text, 'ipv4', 'live');
  test('a complete capture has no problems', () => {
    assert.deepEqual(completenessProblems(rs(liveSave(DEFAULT, 'ipv4'))), []);
  });
  test('missing hook jumps and empty redirect chains are found', () => {
    const text = liveSave(DEFAULT, 'ipv4')
      .split('\n')
      .filter((l) => l !== '-A OUTPUT -j ISTIO_OUTPUT' && l !== '-A PREROUTING -p tcp -j ISTIO_INBOUND' && !l.startsWith('-A ISTIO_REDIRECT '))
      .join('\n');
    const problems = completenessProblems(rs(text));
    assert.ok(problems.some((p) => /nat OUTPUT does not jump to ISTIO_OUTPUT/.test(p)), problems.join('\n'));
    assert.ok(problems.some((p) => /nat PREROUTING does not jump to ISTIO_INBOUND/.test(p)));
    assert.ok(problems.some((p) => /ISTIO_REDIRECT has no REDIRECT rule/.test(p)));
  });
});
