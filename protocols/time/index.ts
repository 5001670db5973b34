/**
 * Time agreement between clouds: the host's own sync state (chrony or linuxptp), and the
 * clock-skew policy that refuses time-sensitive steps when a peer's clock is too far off.
 * Peer offsets are measured by the XMPP work (XEP-0202) and passed in as {@link PeerOffset}s.
 */
export { TIME_ERRORS, timeError, type TimeCode } from './errors.js';
export { parseChronyTracking, type ChronyTracking } from './chrony.js';
export { parsePmcTimeStatus, type PtpTimeStatus } from './ptp.js';
export { checkClockSkew, judgePeers, type PeerOffset, type PeerOffsetProvider } from './skew.js';
export { readChrony, readHostTimeSync, readPtp, type HostTimeOptions, type HostTimeSync } from './host.js';
