/**
 * `intercloud time`: the host's time-sync state (chronyd or ptp4l) and, when a peer offset
 * provider is wired in, each peer's measured offset and round trip judged against the
 * clock-skew bound.
 *
 * Hook for the XMPP work (XEP-0202 Entity Time): pass a {@link PeerOffsetProvider} —
 * `(p) => registerTimeCommands(p, { peerOffsets })` in the CLI's COMMANDS list.
 */
import type { Command } from 'commander';
import {
  judgePeers, readHostTimeSync, type HostTimeOptions, type HostTimeSync, type PeerOffset, type PeerOffsetProvider,
} from '../../../protocols/time/index.js';
import { EXIT, printJson, usageError } from '../output.js';

/** What `intercloud time` can be given by other areas. */
export interface TimeCommandOptions {
  /** Measures the peers' clock offsets (XEP-0202); without it only the host is shown. */
  peerOffsets?: PeerOffsetProvider;
}

function describeHost(h: HostTimeSync): string {
  if (h.source === 'chrony') {
    const sign = h.systemOffsetMs >= 0 ? '+' : '';
    return `host: chronyd, ${h.synchronized ? 'synchronized' : 'not synchronized'}, stratum ${h.stratum}, reference ${h.referenceName} (${h.referenceId}), `
      + `system clock ${sign}${h.systemOffsetMs.toFixed(3)} ms, rms ${h.rmsOffsetMs.toFixed(3)} ms, root delay ${h.rootDelayMs.toFixed(3)} ms, leap ${h.leapStatus}`;
  }
  return `host: ptp4l, ${h.gmPresent ? `grandmaster ${h.gmIdentity}` : 'no grandmaster'}, master offset ${h.masterOffsetMs.toFixed(6)} ms, port ${h.portIdentity}`;
}

/** Registers `intercloud time`. */
export function registerTimeCommands(program: Command, options: TimeCommandOptions = {}): void {
  program.command('time')
    .description('show the host\'s time sync (chronyd or ptp4l) and peers\' clock offsets against the skew bound')
    .option('--source <auto|chrony|ptp>', 'which daemon to ask', 'auto')
    .option('--chrony-host <address>', 'chronyc -h (command address)')
    .option('--chrony-port <port>', 'chronyc -p (command port)')
    .option('--pmc-socket <path>', 'pmc -s (ptp4l UDS address)')
    .option('--max-skew-ms <ms>', 'clock-skew bound for peers', '2000')
    .option('--json', 'print json')
    .action(async (o: { source: string; chronyHost?: string; chronyPort?: string; pmcSocket?: string; maxSkewMs: string; json?: boolean }) => {
      if (o.source !== 'auto' && o.source !== 'chrony' && o.source !== 'ptp') {
        throw usageError(`--source '${o.source}' is not auto, chrony or ptp`);
      }
      const bound = Number(o.maxSkewMs);
      const hostOpts: HostTimeOptions = {
        source: o.source,
        ...(o.chronyHost === undefined ? {} : { chronyHost: o.chronyHost }),
        ...(o.chronyPort === undefined ? {} : { chronyPort: Number(o.chronyPort) }),
        ...(o.pmcSocket === undefined ? {} : { pmcSocket: o.pmcSocket }),
      };
      const host = await readHostTimeSync(hostOpts);
      let peers: PeerOffset[] | null = null;
      if (options.peerOffsets) peers = await options.peerOffsets(AbortSignal.timeout(10_000));
      const judged = peers === null ? null : judgePeers(peers, bound);
      if (o.json) {
        printJson({ host, peers: judged, maxSkewMs: bound });
      } else {
        process.stdout.write(`${describeHost(host)}\n`);
        if (judged === null) {
          process.stdout.write('peers: not measured (peer offsets come from the XMPP session, XEP-0202)\n');
        } else {
          for (const p of judged) {
            process.stdout.write(`peer ${p.peer}: offset ${p.offsetMs.toFixed(1)} ms, round trip ${p.roundTripMs.toFixed(1)} ms, ${p.withinBound ? 'ok' : `clock-skew (bound ${bound} ms)`}\n`);
          }
        }
      }
      if (judged?.some((p) => !p.withinBound)) process.exitCode = EXIT.rejected;
    });
}
