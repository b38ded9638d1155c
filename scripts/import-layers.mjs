#!/usr/bin/env node
// Prints the import graph of src/ as layers (each folder above everything it
// imports), the imports that point upward, and any cycles (folder and file level).
// Plain Node, no dependencies: `node scripts/import-layers.mjs [srcDir]`.
// Exit code 1 when a file-level cycle exists.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const root = resolve(process.argv[2] ?? 'src');

function filesUnder(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return filesUnder(path);
    return /\.ts$/.test(name) && !/\.d\.ts$/.test(name) ? [path] : [];
  });
}

// Static and dynamic imports and re-exports with relative specifiers (`import type` counts: it is a dependency of meaning).
const IMPORT = /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)|^\s*import\s*['"](\.[^'"]+)['"]/gm;

const files = filesUnder(root).map((f) => relative(root, f));
const edges = new Map(files.map((f) => [f, new Set()]));
for (const file of files) {
  const text = readFileSync(join(root, file), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '');
  for (const match of text.matchAll(IMPORT)) {
    const spec = match[1] ?? match[2] ?? match[3];
    const target = relative(root, resolve(root, dirname(file), spec)).replace(/\.js$/, '.ts');
    if (edges.has(target)) edges.get(file).add(target);
  }
}

const folderOf = (file) => (file.includes('/') ? file.split('/')[0] : `(${file.replace(/\.ts$/, '')})`);

// Strongly connected components (Tarjan) of a graph given as Map<node, Set<node>>.
function cycles(graph) {
  let index = 0;
  const stack = [];
  const info = new Map();
  const found = [];
  const visit = (v) => {
    info.set(v, { index, low: index, onStack: true });
    index++;
    stack.push(v);
    for (const w of graph.get(v) ?? []) {
      if (!info.has(w)) {
        visit(w);
        info.get(v).low = Math.min(info.get(v).low, info.get(w).low);
      } else if (info.get(w).onStack) {
        info.get(v).low = Math.min(info.get(v).low, info.get(w).index);
      }
    }
    if (info.get(v).low === info.get(v).index) {
      const component = [];
      let w;
      do {
        w = stack.pop();
        info.get(w).onStack = false;
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || graph.get(v)?.has(v)) found.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!info.has(v)) visit(v);
  return found;
}

const folders = new Map();
for (const [file, targets] of edges) {
  const from = folderOf(file);
  if (!folders.has(from)) folders.set(from, new Set());
  for (const target of targets) if (folderOf(target) !== from) folders.get(from).add(folderOf(target));
}

// Layers: a folder sits one above the highest folder it imports; folders in a cycle share the cycle's layer.
const folderCycles = cycles(folders);
const groupOf = new Map([...folders.keys()].map((f) => [f, f]));
for (const component of folderCycles) for (const f of component) groupOf.set(f, component.join('+'));
const groups = new Map();
for (const [f, targets] of folders) {
  const g = groupOf.get(f);
  if (!groups.has(g)) groups.set(g, new Set());
  for (const t of targets) if (groupOf.get(t) !== g) groups.get(g).add(groupOf.get(t));
}
const level = new Map();
const levelOf = (g) => {
  if (level.has(g)) return level.get(g);
  level.set(g, 0);
  const value = Math.max(-1, ...[...groups.get(g)].map(levelOf)) + 1;
  level.set(g, value);
  return value;
};
for (const g of groups.keys()) levelOf(g);

const byLevel = new Map();
for (const [g, l] of level) byLevel.set(l, [...(byLevel.get(l) ?? []), g].sort());
console.log(`import layers of ${relative(process.cwd(), root) || '.'} (${files.length} files), top first:`);
for (const l of [...byLevel.keys()].sort((a, b) => b - a)) console.log(`  L${l}: ${byLevel.get(l).join('  ')}`);

// Inside a folder cycle, the folder-to-folder imports that make it, with the files behind each.
const cyclePairs = new Map();
for (const [file, targets] of edges) {
  for (const target of targets) {
    const from = folderOf(file);
    const to = folderOf(target);
    if (from === to || groupOf.get(from) !== groupOf.get(to) || !folderCycles.length) continue;
    const key = `${from} -> ${to}`;
    cyclePairs.set(key, [...(cyclePairs.get(key) ?? []), `${file} -> ${target}`]);
  }
}
const cliPosition = level.get(groupOf.get('cli'));
const top = Math.max(...level.values());
const cliGroup = groupOf.get('cli');
if (cliGroup !== 'cli') console.log(`cli/ is not on top: it is inside a folder cycle (${cliGroup}) at L${cliPosition}`);
else console.log(`cli/ is at L${cliPosition}${cliPosition === top ? ' (the top)' : `, below the top L${top}`}`);
const above = [...level].filter(([g, l]) => l > cliPosition).map(([g]) => g);
if (above.length) console.log(`folders above cli/: ${above.sort().join(', ')}`);
console.log(`folder cycles: ${folderCycles.length ? folderCycles.map((c) => c.join(' <-> ')).join('; ') : 'none'}`);
if (cyclePairs.size) {
  console.log(`folder imports inside the cycles (${cyclePairs.size}):`);
  for (const [pair, list] of [...cyclePairs].sort()) {
    console.log(`  ${pair}: ${list.length}${list.length <= 2 ? ` (${list.join(', ')})` : ''}`);
  }
}
const fileCycles = cycles(edges);
console.log(`file cycles: ${fileCycles.length ? '' : 'none'}`);
for (const c of fileCycles) console.log(`  ${c.join(' <-> ')}`);
process.exitCode = fileCycles.length ? 1 : 0;
