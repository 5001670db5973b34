/**
 * Reads the host's time-sync state from whichever daemon runs: chronyd (`chronyc -c
 * tracking`) or ptp4l (`pmc -u -b 0 'GET TIME_STATUS_NP'`). Runs the commands; parsing is
 * in the pure `chrony.ts` / `ptp.ts`.
 */
import { execFile } from 'node:child_process';
import { parseChronyTracking, type ChronyTracking } from './chrony.js';
import { timeError } from './errors.js';
import { parsePmcTimeStatus, type PtpTimeStatus } from './ptp.js';

/** The host's sync state, from either daemon. */
export type HostTimeSync = ChronyTracking | PtpTimeStatus;

/** Where the daemons are and which to ask. */
export interface HostTimeOptions {
  /** `auto` (default) asks chronyd, then ptp4l. */
  source?: 'auto' | 'chrony' | 'ptp';
  /** chronyc `-h` (command address); default: chronyc's own default (its Unix socket). */
  chronyHost?: string;
  /** chronyc `-p` (command port). */
  chronyPort?: number;
  /** pmc `-s` (ptp4l's UDS address); default: pmc's own default. */
  pmcSocket?: string;
  /** Per-command timeout (ms, default 5000). */
  timeoutMs?: number;
}

function runCommand(cmd: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) {
        reject(timeError('TIME_NO_DAEMON', `'${cmd} ${args.join(' ')}' failed`, {
          cause: err, details: { command: cmd, exitStatus: (err as { code?: unknown }).code, stderr: String(stderr).slice(0, 500), stdout: String(stdout).slice(0, 200) },
        }));
      } else {
        resolve(stdout);
      }
    });
  });
}

/** chronyd's tracking state. TIME_NO_DAEMON when chronyc cannot reach it. */
export async function readChrony(opts: HostTimeOptions = {}): Promise<ChronyTracking> {
  const args = [
    ...(opts.chronyHost === undefined ? [] : ['-h', opts.chronyHost]), ...(opts.chronyPort === undefined ? [] : ['-p', String(opts.chronyPort)]),
    '-c', 'tracking',
  ];
  return parseChronyTracking(await runCommand('chronyc', args, opts.timeoutMs ?? 5000));
}

/** ptp4l's TIME_STATUS_NP. TIME_NO_DAEMON when pmc gets no answer. */
export async function readPtp(opts: HostTimeOptions = {}): Promise<PtpTimeStatus> {
  const args = ['-u', '-b', '0', ...(opts.pmcSocket === undefined ? [] : ['-s', opts.pmcSocket]), 'GET TIME_STATUS_NP'];
  return parsePmcTimeStatus(await runCommand('pmc', args, opts.timeoutMs ?? 5000));
}

/** The host's sync state from the chosen (or the first answering) daemon; TIME_NO_DAEMON when none answers. */
export async function readHostTimeSync(opts: HostTimeOptions = {}): Promise<HostTimeSync> {
  const source = opts.source ?? 'auto';
  if (source === 'chrony') return readChrony(opts);
  if (source === 'ptp') return readPtp(opts);
  const causes: unknown[] = [];
  for (const read of [readChrony, readPtp]) {
    try {
      return await read(opts);
    } catch (err) {
      if ((err as { code?: string }).code !== 'TIME_NO_DAEMON') throw err;
      causes.push(err);
    }
  }
  throw timeError('TIME_NO_DAEMON', 'neither chronyd (chronyc) nor ptp4l (pmc) answered', { cause: causes[0], details: { tried: ['chrony', 'ptp'] } });
}
