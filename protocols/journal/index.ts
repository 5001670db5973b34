/**
 * The line format shared by the transfer journals (protocols/amqp) and the replication journals
 * (agent/replication): `<crc-32> <json>` lines, a torn last line dropped on reading. Pure.
 */
export { decodeJournalLines, encodeJournalLine, type DecodedJournalLines } from './lines.js';
