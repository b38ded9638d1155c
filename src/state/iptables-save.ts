/** Parses iptables-save output (either backend) into tables, chains and rule specs. Pure. */

export interface SavedRule {
  readonly chain: string;
  /** Everything after `-A CHAIN `, exactly as saved. */
  readonly spec: string;
}

export interface SavedTable {
  readonly name: string;
  /** Declared chains in order (`:NAME POLICY [counters]`). */
  readonly chains: string[];
  readonly rules: SavedRule[];
}

export type SaveState = ReadonlyMap<string, SavedTable>;

export function parseSave(text: string): Map<string, SavedTable> {
  const tables = new Map<string, SavedTable>();
  let current: SavedTable | undefined;
  // Line by line without split(): a read-back of 5000 excludes is parsed on the init path.
  for (let start = 0; start < text.length; ) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    const line = text.charCodeAt(end - 1) <= 32 ? text.slice(start, end).trimEnd() : text.slice(start, end);
    start = end + 1;
    const first = line.charCodeAt(0);
    if (first === 0x2d /* - */ && line.startsWith('-A ')) {
      if (!current) continue;
      const space = line.indexOf(' ', 3);
      current.rules.push(space === -1 ? { chain: line.slice(3), spec: '' } : { chain: line.slice(3, space), spec: line.slice(space + 1) });
    } else if (first === 0x2a /* * */) {
      const name = line.slice(1).trim();
      current = tables.get(name) ?? { name, chains: [], rules: [] };
      tables.set(name, current);
    } else if (line === 'COMMIT') {
      current = undefined;
    } else if (current && first === 0x3a /* : */) {
      current.chains.push(line.slice(1).split(' ')[0]!);
    }
  }
  return tables;
}

/** Number of real rules (`-A` lines), not header lines: Istio's line count was fooled by headers (#61020). */
export function countRules(state: SaveState, predicate: (table: string, rule: SavedRule) => boolean = () => true): number {
  let count = 0;
  for (const table of state.values()) for (const rule of table.rules) if (predicate(table.name, rule)) count++;
  return count;
}
