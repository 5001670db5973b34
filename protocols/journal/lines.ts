/**
 * The line format of this project's append-only journals (pure codec): one record per line,
 * `<crc-32 of the json as 8 hex digits> <json>\n`. A crash can leave a torn last line:
 * {@link decodeJournalLines} drops it and says how many bytes are good, so the file can be
 * truncated there before appending again. A bad line *before* the last is corruption, reported
 * through the caller's `damaged` (each area raises its own coded error). What a record may be is
 * the caller's `parse` (its schema); a line whose JSON it refuses counts as damaged.
 */
import { crc32 } from 'node:zlib';

/** Encodes one record as a journal line (with its trailing newline). */
export function encodeJournalLine(record: unknown): string {
  const json = JSON.stringify(record);
  return `${crc32(json).toString(16).padStart(8, '0')} ${json}\n`;
}

/** What {@link decodeJournalLines} found. */
export interface DecodedJournalLines<R> {
  readonly records: R[];
  /** Bytes of the text that hold complete, valid records (truncate the file here). */
  readonly goodBytes: number;
  /** True when a torn or invalid last line was dropped. */
  readonly tornTail: boolean;
}

/**
 * Decodes a journal's text. `parse` turns one line's JSON into a record, or `undefined` when it
 * is not one; `damaged(line)` builds the error thrown for a damaged line before the last.
 */
export function decodeJournalLines<R>(text: string, parse: (json: unknown) => R | undefined, damaged: (line: number) => Error): DecodedJournalLines<R> {
  const records: R[] = [];
  let pos = 0;
  let line = 0;
  while (pos < text.length) {
    const nl = text.indexOf('\n', pos);
    const isLast = nl < 0 || nl === text.length - 1;
    line++;
    const rec = nl < 0 ? undefined : decodeLine(text.slice(pos, nl), parse);
    if (rec === undefined) {
      if (isLast) return { records, goodBytes: Buffer.byteLength(text.slice(0, pos)), tornTail: true };
      throw damaged(line);
    }
    records.push(rec);
    pos = nl + 1;
  }
  return { records, goodBytes: Buffer.byteLength(text), tornTail: false };
}

function decodeLine<R>(raw: string, parse: (json: unknown) => R | undefined): R | undefined {
  const m = /^([0-9a-f]{8}) (.*)$/.exec(raw);
  if (!m) return undefined;
  if (crc32(m[2]!).toString(16).padStart(8, '0') !== m[1]) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(m[2]!);
  } catch (err) {
    // A line whose CRC matched but is not JSON cannot come from this codec: treat it as damage.
    void err;
    return undefined;
  }
  return parse(json);
}
