import type { Analyzer, AnalyzerResult, Evidence, Finding } from './types.js';

/**
 * `kubectl get jobs` tables, old (`DESIRED SUCCESSFUL`) and new
 * (`COMPLETIONS DURATION`, `STATUS COMPLETIONS`): a Job with pods but none
 * succeeded is what a sidecar that never exits looks like from the Job's side.
 * Rows are only read right after a header, so other lines cost one check.
 */

const OLD_HEADER = /^NAME\s{1,40}DESIRED\s{1,40}SUCCESSFUL\s{1,40}AGE\s{0,8}$/;
const OLD_ROW = /^(\S{1,253})\s{1,40}([1-9]\d{0,4})\s{1,40}0\s{1,40}\d{1,5}[smhd]/;
const NEW_HEADER = /^NAME\s{1,40}(?:STATUS\s{1,40})?COMPLETIONS\s{1,40}DURATION\s{1,40}AGE\s{0,8}$/;
const NEW_ROW = /^(\S{1,253})\s{1,40}(?:Running\s{1,40})?0\/[1-9]\d{0,4}\s{1,40}\d{1,5}[smhd]/;
/** Rows read per table: plenty for a paste, bounded for a dump. */
const MAX_ROWS = 200;

export class JobTableAnalyzer implements Analyzer {
  private table: { header: Evidence; row: RegExp; rows: number } | undefined;
  private readonly stuck: Evidence[] = [];

  line(lineNo: number, text: string): void {
    if (text.startsWith('NAME')) {
      const row = OLD_HEADER.test(text) ? OLD_ROW : NEW_HEADER.test(text) ? NEW_ROW : undefined;
      this.table = row === undefined ? undefined : { header: { line: lineNo, text }, row, rows: 0 };
      return;
    }
    const table = this.table;
    if (table === undefined) return;
    table.rows += 1;
    if (table.rows > MAX_ROWS) {
      this.table = undefined;
      return;
    }
    if (table.row.test(text) && this.stuck.length < 3) {
      if (this.stuck.length === 0) this.stuck.push(table.header);
      this.stuck.push({ line: lineNo, text });
    }
  }

  boundary(): void {
    this.table = undefined;
  }

  finish(): AnalyzerResult {
    const findings: Finding[] =
      this.stuck.length === 0
        ? []
        : [{ cause: 'sidecar-blocks-job-completion', name: 'job-status', weight: 0.45, evidence: [...this.stuck] }];
    return { findings, markers: [] };
  }
}

/** Every pattern this analyzer runs, for the linearity check in the tests. */
export const JOB_TABLE_PATTERNS: readonly RegExp[] = [OLD_HEADER, OLD_ROW, NEW_HEADER, NEW_ROW];
