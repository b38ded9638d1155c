/**
 * Line handling for arbitrary pasted input: huge, binary or badly encoded text
 * must not crash or stall the classifier.
 */

/** Lines longer than this are matched in overlapping windows, so one giant line costs no more than many short ones. */
export const MATCH_WINDOW = 4096;
const WINDOW_OVERLAP = 256;

/** Calls `visit(lineNo, line)` for every line (1-based), without building an array of all lines. */
export function forEachLine(text: string, visit: (lineNo: number, line: string) => void): number {
  let start = 0;
  let lineNo = 0;
  const length = text.length;
  while (start < length) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = length;
    lineNo += 1;
    const stop = end > start && text.charCodeAt(end - 1) === 13 ? end - 1 : end;
    visit(lineNo, text.slice(start, stop));
    start = end + 1;
  }
  return lineNo;
}

// ANSI colour/cursor sequences (kubectl plugins, coloured app logs); bounded so it stays linear.
export const ANSI = /\u001b\[[0-9;?]{0,32}[A-Za-z]/g;
const utf16 = new TextDecoder('utf-16le');

function isControl(code: number): boolean {
  return (code < 32 && code !== 9) || (code >= 127 && code <= 159);
}

/** The line as classifiers and quotes should see it: no escape sequences, no control characters. */
export function cleanLine(line: string): string {
  let out = line;
  if (out.includes('\u001b')) out = out.replace(ANSI, '');
  // Quick scan first: most lines have no control characters and need no copy.
  let first = -1;
  for (let i = 0; i < out.length; i += 1) {
    if (isControl(out.charCodeAt(i))) {
      first = i;
      break;
    }
  }
  if (first === -1) return out;
  // Controls (C0 except tab, DEL, C1) become U+FFFD so quotes stay printable. A code-unit
  // buffer keeps this linear and fast even for a multi-megabyte line of binary.
  const units = new Uint16Array(out.length);
  for (let i = 0; i < out.length; i += 1) {
    const code = out.charCodeAt(i);
    units[i] = i >= first && isControl(code) ? 0xfffd : code;
  }
  return utf16.decode(units);
}

/** The pieces of a line that patterns are run on: the line itself, or overlapping windows of a very long one. */
export function matchWindows(line: string): string[] {
  if (line.length <= MATCH_WINDOW) return [line];
  const windows: string[] = [];
  const step = MATCH_WINDOW - WINDOW_OVERLAP;
  for (let start = 0; start < line.length; start += step) {
    windows.push(line.slice(start, start + MATCH_WINDOW));
    if (start + MATCH_WINDOW >= line.length) break;
  }
  return windows;
}

/** A quote for evidence: trimmed of trailing blanks and cut to `max` characters. */
export function quote(line: string, max: number): string {
  // Cut before trimming so a giant line is never scanned whole.
  const head = line.length > max + 1 ? line.slice(0, max + 1) : line;
  const trimmed = head.trimEnd();
  if (trimmed.length <= max) return trimmed;
  return `${trimmed.slice(0, Math.max(1, max - 1))}…`;
}
