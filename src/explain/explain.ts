/**
 * A configuration's capture in plain language: what is captured, what is
 * exempt and why, and the rules chain by chain with the reason for each; and
 * a Mermaid flowchart of hooks, chains, jumps and targets. Pure.
 */
import type { CaptureSpec, RunSettings } from '../config/types.js';
import { formatCidr } from '../net/ip.js';
import { DNS_AGENT_PORT, OUTBOUND_MARK, PASSTHROUGH_V4, PASSTHROUGH_V6 } from '../rules/constants.js';
import { BUILTIN_CHAINS, type Family, type Ruleset } from '../rules/model.js';
import { simRulesetFromConfig } from '../trace/from-config.js';
import type { SimMatch, SimRuleset, SimTableName, SimTarget } from '../trace/model.js';

export interface ExplainSection {
  readonly title: string;
  readonly items: readonly string[];
}

export interface ChainListing {
  readonly family: Family;
  readonly table: SimTableName;
  readonly chain: string;
  readonly rules: readonly { readonly text: string; readonly why: string }[];
}

export interface Explanation {
  readonly sections: readonly ExplainSection[];
  readonly chains: readonly ChainListing[];
}

const list = (items: readonly (string | number)[]) => items.join(', ');

export function explainConfig(config: CaptureSpec & Pick<RunSettings, 'backend' | 'nativeNftables'>, ruleset: Ruleset): Explanation {
  const tproxy = config.mode === 'TPROXY';
  const proxyIds = [...config.proxyUids.map((u) => `uid ${u}`), ...config.proxyGids.map((g) => `gid ${g}`)];
  const loopback4 = config.ipv4LoopbackCidr;
  const T = config.inboundTunnelPort;

  const setup: string[] = [
    `inbound interception: ${config.mode}${tproxy ? ` (mangle table; TPROXY marks packets ${config.tproxyMark} and 'ip rule fwmark ${config.tproxyMark} lookup ${config.tproxyRouteTable}' + 'local default dev lo table ${config.tproxyRouteTable}' deliver them to the proxy with their original destination)` : ' (nat table: the destination is rewritten to the proxy port)'}`,
    `outbound interception: REDIRECT in the nat table (always)`,
    `IPv6 rules: ${config.ipv6.enabled ? 'on' : 'off'} (${config.ipv6.reason})${config.ipv6.enabled ? '; ::6/128 is added to lo for the proxy\'s IPv6 passthrough' : ''}`,
    `backend: ${config.nativeNftables ? "native nftables (tables inet istio-proxy-nat, -mangle, -raw); the same rules as below in nft syntax" : `iptables (${config.backend === 'auto' ? 'legacy or nft, detected at apply time' : `iptables-${config.backend}, pinned`}); the rules below are what iptables-save shows`}`,
  ];

  const captured: string[] = [];
  const include = config.outboundCidrs;
  if (include.wildcard) captured.push(`outbound TCP to every destination is redirected to the proxy on port ${config.proxyPort} (-i '*')`);
  else if (include.v4.length + include.v6.length > 0) {
    captured.push(`outbound TCP to ${list([...include.v4, ...include.v6].map(formatCidr))} is redirected to the proxy on port ${config.proxyPort} (-i); other destinations are not captured`);
  } else captured.push('outbound traffic is not captured by destination (-i is empty)');
  if (config.outboundPorts.length > 0) {
    captured.push(`outbound TCP to port${config.outboundPorts.length > 1 ? 's' : ''} ${list(config.outboundPorts)} is captured whatever the destination (-q), after the exemptions below`);
  }
  captured.push('outbound UDP is never sent to the proxy (its redirect chain matches TCP only), except DNS when captured');
  const inbound = config.inboundPorts;
  const how = tproxy ? `handed to the proxy on port ${config.inboundCapturePort} by TPROXY` : `redirected to the proxy on port ${config.inboundCapturePort}`;
  if (inbound.kind === 'all') captured.push(`inbound TCP to every port${inbound.exclude.length ? ` except ${list(inbound.exclude)} (-d)` : ''} is ${how} (-b '*')`);
  else if (inbound.kind === 'list') captured.push(`inbound TCP to port${inbound.ports.length > 1 ? 's' : ''} ${list(inbound.ports)} is ${how} (-b); other ports reach the app directly`);
  else captured.push('inbound traffic is not captured (-b is empty)');
  for (const nic of config.rerouteInterfaces) {
    captured.push(`traffic arriving on ${nic} (KubeVirt, -k) is treated as outbound and redirected to port ${config.proxyPort}${include.wildcard ? '' : ' when it goes to the captured CIDRs'}`);
  }

  const exempt: string[] = [];
  if (proxyIds.length > 0) {
    exempt.push(`traffic of the proxy itself (${list(proxyIds)}; -u/-g): its upstream connections must leave as addressed, or they would loop back into the proxy`);
    exempt.push(`  except: the proxy calling this pod's own address over lo (not localhost, not port ${T}${config.dns.effective ? ' or 53' : ''}) is sent to inbound capture on ${config.inboundCapturePort}, so the pod's inbound policy applies to it`);
  }
  if (!include.hasLoopback) exempt.push(`an app calling this pod over lo as anyone but the proxy: app-to-app traffic inside the pod stays local`);
  exempt.push(`destination ${loopback4}${config.ipv6.enabled ? ' and ::1/128' : ''} (localhost): app-to-app traffic in the pod`);
  exempt.push(`source ${PASSTHROUGH_V4}${config.ipv6.enabled ? ` and ${PASSTHROUGH_V6}` : ''} over lo: the proxy's inbound passthrough connections to the app, which must not be captured again`);
  exempt.push(`inbound port ${T} (-e): the HBONE tunnel port of ambient/waypoint traffic, already handled by the proxy`);
  if (config.outboundPortsExclude.length > 0) exempt.push(`outbound TCP and UDP to port${config.outboundPortsExclude.length > 1 ? 's' : ''} ${list(config.outboundPortsExclude)} (-o)`);
  const excludedCidrs = [...config.outboundCidrsExclude.v4, ...config.outboundCidrsExclude.v6];
  if (excludedCidrs.length > 0) exempt.push(`outbound traffic to ${list(excludedCidrs.map(formatCidr))} (-x)`);
  if (inbound.kind === 'all' && inbound.exclude.length > 0) exempt.push(`inbound TCP to port${inbound.exclude.length > 1 ? 's' : ''} ${list(inbound.exclude)} (-d): they reach the app directly`);
  for (const nic of config.excludeInterfaces) exempt.push(`everything in or out through interface ${nic} (-c)`);
  if (config.ownerGroups.kind === 'allExcept' && config.ownerGroups.groups.length > 0) {
    exempt.push(`outbound traffic of group${config.ownerGroups.groups.length > 1 ? 's' : ''} ${list(config.ownerGroups.groups)} (ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE)`);
  }
  if (config.ownerGroups.kind === 'only') exempt.push(`outbound traffic of every group other than ${list(config.ownerGroups.groups)} (ISTIO_OUTBOUND_OWNER_GROUPS)`);
  if (tproxy) {
    exempt.push(`packets already marked ${config.tproxyMark} (they belong to a connection TPROXY already handed over), and local traffic over lo not marked ${OUTBOUND_MARK} (only the proxy's calls to its own pod are marked ${OUTBOUND_MARK})`);
  }
  if (config.dropInvalid) exempt.push('conntrack-INVALID TCP packets are dropped (--drop-invalid), so stray packets cannot reset captured connections');

  const dns: string[] = [];
  if (!config.dns.requested) dns.push('DNS is not captured (--redirect-dns off): queries go to the resolv.conf servers directly');
  else if (!config.dns.effective) dns.push('DNS capture was asked for but is off: no DNS servers were found and --capture-all-dns is off');
  else {
    const to = config.dns.captureAll ? 'any server (--capture-all-dns)' : list([...config.dns.serversV4, ...config.dns.serversV6]);
    dns.push(`DNS over UDP and TCP port 53 to ${to} is redirected to the agent on port ${DNS_AGENT_PORT}, unless it comes from the proxy itself (the agent's own upstream queries)`);
    dns.push(`conntrack zones keep the agent's upstream queries (zone 1) apart from the apps' queries and the agent's answers (zone 2), so UDP conntrack entries cannot collide`);
  }

  const chains: ChainListing[] = [];
  for (const family of config.ipv6.enabled ? (['ipv4', 'ipv6'] as const) : (['ipv4'] as const)) {
    const sim = simRulesetFromConfig(ruleset, family);
    for (const [table, tableChains] of orderedTables(sim)) {
      for (const [chain, content] of tableChains) {
        chains.push({ family, table, chain, rules: content.rules.map((r) => ({ text: r.text, why: r.why ?? '' })) });
      }
    }
  }

  return {
    sections: [
      { title: 'Setup', items: setup },
      { title: 'Captured', items: captured },
      { title: 'Not captured, and why', items: exempt },
      { title: 'DNS', items: dns },
    ],
    chains,
  };
}

const TABLE_ORDER: readonly SimTableName[] = ['raw', 'mangle', 'nat', 'filter'];

/** Tables in hook order, built-in chains first (PREROUTING, OUTPUT), then the mesh's chains. */
function orderedTables(sim: SimRuleset): [SimTableName, [string, { rules: readonly { text: string; why?: string }[] }][]][] {
  const out: [SimTableName, [string, { rules: readonly { text: string; why?: string }[] }][]][] = [];
  for (const table of TABLE_ORDER) {
    const chains = sim.tables.get(table);
    if (!chains) continue;
    const names = [...chains.keys()];
    const sorted = [...names.filter((n) => BUILTIN_CHAINS.has(n)).sort((a, b) => (a === 'PREROUTING' ? -1 : b === 'PREROUTING' ? 1 : 0)), ...names.filter((n) => !BUILTIN_CHAINS.has(n))];
    out.push([table, sorted.map((name) => [name, chains.get(name)!])]);
  }
  return out;
}

export function renderExplainText(explanation: Explanation, flagsShown: string): string {
  const lines: string[] = [`meshcap explain: ${flagsShown || '(Istio defaults)'}`];
  for (const section of explanation.sections) {
    lines.push('', `${section.title}:`);
    for (const item of section.items) lines.push(item.startsWith('  ') ? `    ${item.trim()}` : `  - ${item}`);
  }
  let family: Family | undefined;
  for (const chain of explanation.chains) {
    if (chain.family !== family) {
      family = chain.family;
      lines.push('', `Rules, ${family === 'ipv4' ? 'IPv4 (iptables-save)' : 'IPv6 (ip6tables-save)'}, in the order the kernel runs them:`);
    }
    lines.push(`  ${chain.table} ${chain.chain}${chain.rules.length === 0 ? '  (no rules)' : ''}`);
    chain.rules.forEach((rule, i) => {
      lines.push(`    ${String(i + 1).padStart(2)}. -A ${chain.chain} ${rule.text}`);
      if (rule.why) lines.push(`        why: ${rule.why}`);
    });
  }
  return `${lines.join('\n')}\n`;
}

/** A short condition for diagrams: "tcp dport 9000, uid 1337". */
export function describeMatches(matches: readonly SimMatch[]): string {
  const not = (negate: boolean | undefined) => (negate ? 'not ' : '');
  const parts = matches.map((m) => {
    switch (m.kind) {
      case 'inIface':
        return `in ${m.name}`;
      case 'outIface':
        return `out ${m.name}`;
      case 'src':
        return `src ${not(m.negate)}${m.net.text}`;
      case 'dst':
        return `dst ${not(m.negate)}${m.net.text}`;
      case 'proto':
        return m.proto;
      case 'dport':
        return `dport ${not(m.negate)}${m.ports.join(',')}`;
      case 'sport':
        return `sport ${m.port}`;
      case 'uidOwner':
        return `uid ${not(m.negate)}${m.id}`;
      case 'gidOwner':
        return `gid ${not(m.negate)}${m.id}`;
      case 'ctstate':
        return `ct ${m.states.join(',').toLowerCase()}`;
      case 'mark':
        return `mark ${not(m.negate)}${m.mark}`;
      case 'connmark':
        return `ctmark ${m.mark}`;
      case 'unsupported':
        return m.text;
    }
  });
  // `tcp` followed by `dport` says the same thing twice.
  const text = parts.filter((p, i) => !(p === 'tcp' || p === 'udp') || !parts[i + 1]?.startsWith('dport')).join(', ');
  return text || 'all';
}

const HOOK_NOTES: Readonly<Record<string, string>> = {
  PREROUTING: 'PREROUTING: packets arriving at the pod',
  OUTPUT: 'OUTPUT: packets the pod sends',
};

/** Mermaid node ids: letters, digits and underscores only. */
const nodeId = (text: string) => text.replace(/[^A-Za-z0-9_]/g, '_');
/** Mermaid label text inside quotes: no quotes, no pipes, no brackets that end the shape. */
const labelText = (text: string) => text.replace(/"/g, '#quot;').replace(/[|]/g, '/').replace(/[<>]/g, ' ');

function targetNode(target: SimTarget): { id: string; shape: string } | undefined {
  switch (target.kind) {
    case 'redirect':
      return { id: `t_redirect_${target.port}`, shape: `(["REDIRECT to :${target.port}"])` };
    case 'tproxy':
      return { id: `t_tproxy_${target.port}`, shape: `(["TPROXY to :${target.port}, mark ${target.mark}"])` };
    case 'accept':
      return { id: 't_accept', shape: '(["ACCEPT"])' };
    case 'drop':
      return { id: 't_drop', shape: '(["DROP"])' };
    case 'return':
      return { id: 't_not_captured', shape: '(["RETURN: not captured, normal routing"])' };
    case 'setMark':
      return { id: `t_mark_${target.mark}`, shape: `[/"set mark ${target.mark}"/]` };
    case 'saveMark':
      return { id: 't_save_mark', shape: '[/"save mark to connection"/]' };
    case 'restoreMark':
      return { id: 't_restore_mark', shape: '[/"restore mark from connection"/]' };
    case 'ctZone':
      return { id: `t_ct_zone_${target.zone}`, shape: `[/"conntrack zone ${target.zone}"/]` };
    default:
      return undefined;
  }
}

/** flowchart LR: hooks -> built-in chains (table order) -> mesh chains -> targets, one edge per distinct target. */
export function renderMermaid(ruleset: Ruleset, family: Family): string {
  const sim = simRulesetFromConfig(ruleset, family);
  const lines = ['flowchart LR'];
  const declared = new Set<string>();
  const declare = (id: string, shape: string) => {
    if (declared.has(id)) return;
    declared.add(id);
    lines.push(`  ${id}${shape}`);
  };
  const edges: string[] = [];
  for (const hook of ['PREROUTING', 'OUTPUT']) {
    const tables = TABLE_ORDER.filter((t) => (sim.tables.get(t)?.get(hook)?.rules.length ?? 0) > 0);
    if (tables.length === 0) continue;
    const hookId = `hook_${hook}`;
    declare(hookId, `{{"${labelText(HOOK_NOTES[hook] ?? hook)}"}}`);
    let previous = hookId;
    for (const table of tables) {
      const id = nodeId(`${table}_${hook}`);
      declare(id, `["${table} ${hook}"]`);
      edges.push(previous === hookId ? `  ${previous} --> ${id}` : `  ${previous} -. "then" .-> ${id}`);
      previous = id;
    }
  }
  for (const [table, chains] of orderedTables(sim)) {
    for (const [chain, content] of chains) {
      const from = nodeId(`${table}_${chain}`);
      declare(from, `["${table} ${chain}"]`);
      const byTarget = new Map<string, { id: string; conditions: string[]; dashed: boolean }>();
      for (const rule of sim.tables.get(table)!.get(chain)!.rules) {
        let to: string;
        if (rule.target.kind === 'jump' || rule.target.kind === 'goto') {
          to = nodeId(`${table}_${rule.target.chain}`);
          declare(to, `["${table} ${rule.target.chain}"]`);
        } else {
          const node = targetNode(rule.target);
          if (!node) continue;
          to = node.id;
          declare(to, node.shape);
        }
        const entry = byTarget.get(to) ?? byTarget.set(to, { id: to, conditions: [], dashed: rule.target.kind === 'return' }).get(to)!;
        entry.conditions.push(describeMatches(rule.matches));
      }
      void content;
      for (const { id, conditions, dashed } of byTarget.values()) {
        const shown = conditions.length > 3 ? `${conditions.slice(0, 2).join(' or ')} or ${conditions.length - 2} more` : conditions.join(' or ');
        const label = labelText(shown.length > 80 ? `${shown.slice(0, 77)}...` : shown);
        edges.push(dashed ? `  ${from} -. "${label}" .-> ${id}` : `  ${from} -- "${label}" --> ${id}`);
      }
    }
  }
  return `${[...lines, ...edges].join('\n')}\n`;
}
