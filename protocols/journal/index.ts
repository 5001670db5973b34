/**
 * The line format shared by the transfer journals (protocols/amqp), the sequencer's journals and
 * the replication journals (agent/): `<crc-32> <json>` lines, a torn last line dropped on reading
 * (pure, `lines.ts`); and the directory fsync the files' writers share (I/O, `fsync-dir.ts`).
 */
export { decodeJournalLines, encodeJournalLine, type DecodedJournalLines } from './lines.js';
export { fsyncDir } from './fsync-dir.js';
