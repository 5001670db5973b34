/**
 * The audit log's hash chain (pure). Each line is the canonical JSON (RFC 8785) of
 * `{seq, time, prev, event, hash}` where `hash` = SHA-256 over the canonical JSON of
 * `{seq, time, prev, event}` and `prev` is the previous line's hash (64 zeros for the
 * first). Changing, removing, swapping or cutting a line breaks the chain at that line.
 * Removing lines from the end is only visible against a remembered head (count + hash).
 */
import { createHash } from 'node:crypto';
import { isIntercloudError } from '../errors/index.js';
import { canonicalJson } from './canonical-json.js';
import { trustError } from './errors.js';

/** What is recorded: JSON data with a `type` (`trust.verify`, `migration.step`, …). */
export interface AuditEvent {
  type: string;
  [field: string]: unknown;
}

/** One line of the log. */
export interface AuditRecord {
  seq: number;
  /** ISO 8601 UTC. */
  time: string;
  /** Hash of the previous record (hex), {@link GENESIS_HASH} for the first. */
  prev: string;
  event: AuditEvent;
  hash: string;
}

/** The end of a chain: how many records and the last hash. */
export interface AuditHead {
  count: number;
  hash: string;
}

/** `prev` of the first record. */
export const GENESIS_HASH = '0'.repeat(64);

/** Why a chain is broken. */
export type AuditBreak = 'unparseable' | 'not-canonical' | 'bad-hash' | 'bad-prev' | 'bad-seq' | 'truncated' | 'head-mismatch';

function brokenAt(line: number, reason: AuditBreak, message: string, cause?: unknown): never {
  throw trustError('TRUST_AUDIT_BROKEN', `audit log line ${line}: ${message}`, { details: { line, reason }, ...(cause === undefined ? {} : { cause }) });
}

/** SHA-256 (hex) of a record's content. */
export function hashRecord(r: Omit<AuditRecord, 'hash'>): string {
  return createHash('sha256').update(canonicalJson({ seq: r.seq, time: r.time, prev: r.prev, event: r.event })).digest('hex');
}

/** The record that follows `head` (undefined for an empty log). */
export function nextRecord(head: AuditHead | undefined, event: AuditEvent, time: Date): AuditRecord {
  if (typeof event.type !== 'string' || event.type === '') throw trustError('TRUST_BAD_ARGUMENT', 'audit event needs a non-empty string type');
  const body = { seq: (head?.count ?? 0) + 1, time: time.toISOString(), prev: head?.hash ?? GENESIS_HASH, event };
  return { ...body, hash: hashRecord(body) };
}

/** The line for a record, newline included. */
export function formatRecord(record: AuditRecord): string {
  return canonicalJson(record) + '\n';
}

/** Checks a log line by line; push lines in order, then call {@link end}. */
export class AuditChainVerifier {
  #head: AuditHead = { count: 0, hash: GENESIS_HASH };
  #line = 0;

  /** The chain so far. */
  get head(): AuditHead {
    return { ...this.#head };
  }

  /** Checks the next line (without its newline). Throws TRUST_AUDIT_BROKEN naming the line. */
  push(text: string): AuditRecord {
    const line = ++this.#line;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      return brokenAt(line, 'unparseable', 'is not json (edited or cut)', err);
    }
    const r = parsed as AuditRecord;
    if (typeof r !== 'object' || r === null || typeof r.seq !== 'number' || typeof r.time !== 'string' || typeof r.prev !== 'string'
      || typeof r.hash !== 'string' || typeof r.event !== 'object' || r.event === null) {
      brokenAt(line, 'unparseable', 'is not an audit record');
    }
    let canonical: string;
    try {
      canonical = canonicalJson(r);
    } catch (err) {
      if (!isIntercloudError(err)) throw err;
      return brokenAt(line, 'unparseable', 'holds a value that is not json data', err);
    }
    if (canonical !== text) brokenAt(line, 'not-canonical', 'is not in canonical form (edited)');
    if (r.hash !== hashRecord(r)) brokenAt(line, 'bad-hash', `hash does not match its content (edited)`);
    if (r.seq !== this.#head.count + 1) brokenAt(line, 'bad-seq', `has seq ${r.seq}, expected ${this.#head.count + 1} (line removed or reordered)`);
    if (r.prev !== this.#head.hash) brokenAt(line, 'bad-prev', 'does not follow the previous line (line removed or reordered)');
    this.#head = { count: r.seq, hash: r.hash };
    return r;
  }

  /** Checks the end of the log; `expect` is a head remembered elsewhere (detects cut-off tails). */
  end(expect?: AuditHead): AuditHead {
    if (expect && (expect.count !== this.#head.count || expect.hash !== this.#head.hash)) {
      brokenAt(this.#line + 1, 'head-mismatch', `log ends at seq ${this.#head.count}, expected seq ${expect.count} with hash '${expect.hash}' (lines removed from the end)`);
    }
    return this.head;
  }
}

/** Verifies a whole log text; returns its head or throws TRUST_AUDIT_BROKEN with the line number. */
export function verifyAuditText(text: string, expect?: AuditHead): AuditHead {
  const verifier = new AuditChainVerifier();
  if (text === '') return verifier.end(expect);
  const lines = text.split('\n');
  const last = lines.pop();
  if (last !== '') {
    // Every record ends with a newline; a last line without one was cut short.
    lines.forEach((l) => verifier.push(l));
    brokenAt(lines.length + 1, 'truncated', 'has no newline (the log was cut)');
  }
  for (const l of lines) verifier.push(l);
  return verifier.end(expect);
}
