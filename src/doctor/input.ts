/**
 * Turns raw bytes into text the classifier can read. Invalid UTF-8 becomes
 * U+FFFD instead of an error, so binary or mis-encoded pastes still get an answer.
 */
const decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: false });

export function decodeInput(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}
