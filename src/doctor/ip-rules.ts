import type { Analyzer, Evidence, Finding, MarkerHit } from './types.js';

/**
 * Spots duplicated policy-routing rules in `ip rule show` output: the `ip`
 * command adds a second `fwmark ... lookup ...` rule instead of failing, so a
 * re-run TPROXY setup shows up as two identical rules with different priorities.
 */

const ANY_RULE = /^\d{1,5}:\s{1,8}(?:not )?from /;
const IP_RULE = /^(\d{1,5}):\s{1,8}(from \S{1,64} fwmark 0x[0-9a-f]{1,8}(?:\/0x[0-9a-f]{1,8})? lookup \S{1,32})\s{0,8}$/;

export class IpRuleAnalyzer implements Analyzer {
  private seen = new Map<string, Evidence>();
  private duplicate: Evidence[] | undefined;

  line(lineNo: number, text: string): void {
    if (!ANY_RULE.test(text)) {
      // Anything else ends the listing; a later `ip rule show` starts over.
      if (this.seen.size > 0) this.seen = new Map();
      return;
    }
    const match = IP_RULE.exec(text);
    if (match === null || match[2] === undefined) return;
    const evidence = { line: lineNo, text };
    const earlier = this.seen.get(match[2]);
    if (earlier !== undefined && this.duplicate === undefined) this.duplicate = [earlier, evidence];
    this.seen.set(match[2], evidence);
  }

  boundary(): void {
    this.seen = new Map();
  }

  finish(): { findings: Finding[]; markers: MarkerHit[] } {
    if (this.duplicate === undefined) return { findings: [], markers: [] };
    return {
      findings: [{ cause: 'tproxy-route-exists', name: 'duplicate-fwmark-rule', weight: 0.6, evidence: this.duplicate }],
      markers: [],
    };
  }
}

/** Every pattern this analyzer runs, for the linearity check in the tests. */
export const IP_RULE_PATTERNS: readonly RegExp[] = [ANY_RULE, IP_RULE];
