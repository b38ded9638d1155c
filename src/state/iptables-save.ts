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
  for (const rawLine of text.split('\n')) {
    const line = rawLine.trimEnd();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('*')) {
      const name = line.slice(1).trim();
      current = tables.get(name) ?? { name, chains: [], rules: [] };
      tables.set(name, current);
    } else if (line === 'COMMIT') {
      current = undefined;
    } else if (current && line.startsWith(':')) {
      current.chains.push(line.slice(1).split(' ')[0]!);
    } else if (current && line.startsWith('-A ')) {
      const rest = line.slice(3);
      const space = rest.indexOf(' ');
      current.rules.push(space === -1 ? { chain: rest, spec: '' } : { chain: rest.slice(0, space), spec: rest.slice(space + 1) });
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
