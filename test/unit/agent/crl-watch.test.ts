/**
 * The agent's CRL watcher (issue 12, finding 7): a re-issued CRL file is taken without a restart,
 * a bad file is refused and the previous CRL kept, and the operator is warned well before the
 * CRL's nextUpdate (and told once it passed).
 */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CrlWatcher } from '../../../agent/daemon/crl-watch.js';
import {
  buildCrl, certificateToPem, createRootCertificate, crlToPem, generateKeyPair, issueGatewayCertificate, privateKeyToPem,
} from '../../../protocols/trust/index.js';
import { createTrustBinding } from '../../../protocols/xmpp/index.js';

const DAY = 86_400_000;
const rootKeys = generateKeyPair('ec');
const root = createRootCertificate({ ...rootKeys, now: new Date(Date.now() - 30 * DAY), commonName: 'Test Root' });

/** A CRL of the test root, `number`, current from `thisUpdate` for `days`. */
function crl(number: number, thisUpdate: number, days = 7): string {
  return crlToPem(buildCrl({
    issuer: root, signingKey: rootKeys.privateKey, revoked: [], crlNumber: number,
    thisUpdate: new Date(thisUpdate), nextUpdate: new Date(thisUpdate + days * DAY),
  }));
}

/** A logger whose records the test reads. */
function capture(): { log: pino.Logger; records: Array<{ level: number; msg: string; [k: string]: unknown }> } {
  const records: Array<{ level: number; msg: string }> = [];
  const sink = new Writable({ write(chunk: Buffer, _enc, done) { records.push(JSON.parse(chunk.toString()) as { level: number; msg: string }); done(); } });
  return { log: pino({ level: 'debug' }, sink), records };
}
const WARN = 40;
const ERROR = 50;

describe('CrlWatcher', () => {
  let dir: string;
  let file: string;
  let watcher: CrlWatcher | undefined;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'crl-watch-'));
    file = join(dir, 'crl.pem');
  });
  afterEach(() => {
    watcher?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('takes a CRL re-issued by rename (as `intercloud ca crl` writes it) without a restart', async () => {
    const now = Date.now();
    writeFileSync(file, crl(1, now - DAY));
    const applied: string[] = [];
    const { log } = capture();
    watcher = new CrlWatcher({ file, apply: (pem) => applied.push(pem), log, pollMs: 3_600_000 });
    await watcher.start();
    expect(watcher.loaded?.crlNumber).toBe('1');
    const next = crl(2, now);
    writeFileSync(`${file}.tmp`, next);
    renameSync(`${file}.tmp`, file);
    // the file system watch, not the hourly poll, brings it in
    await expect.poll(() => applied.at(-1), { timeout: 5_000 }).toBe(next);
    expect(watcher.loaded?.crlNumber).toBe('2');
  });

  it('refuses a file that holds no CRL and keeps the previous one', async () => {
    const now = Date.now();
    const first = crl(1, now - DAY);
    writeFileSync(file, first);
    const applied: string[] = [];
    const { log, records } = capture();
    watcher = new CrlWatcher({ file, apply: (pem) => applied.push(pem), log, pollMs: 3_600_000 });
    await watcher.check();
    writeFileSync(file, 'not a crl\n');
    await watcher.check();
    expect(applied).toEqual([first]);
    expect(watcher.loaded?.crlNumber).toBe('1');
    expect(records.some((r) => r.level === ERROR && /refused the new crl/.test(r.msg))).toBe(true);
  });

  it('refuses a CRL that no trusted root signed (through the trust binding) and keeps the one in force', async () => {
    const now = Date.now();
    const gwKeys = generateKeyPair('ec');
    const gw = issueGatewayCertificate({ certificate: root, privateKey: rootKeys.privateKey }, { cloudId: 'cloud-x', publicKey: gwKeys.publicKey, now: new Date(now - DAY) });
    const trust = createTrustBinding({
      certificatePem: certificateToPem(gw.der), privateKeyPem: privateKeyToPem(gwKeys.privateKey), rootsPem: certificateToPem(root.der),
    });
    writeFileSync(file, crl(1, now - DAY));
    const { log, records } = capture();
    watcher = new CrlWatcher({ file, apply: (pem) => trust.setCrl(pem), log, pollMs: 3_600_000 });
    await watcher.check();
    const rogueKeys = generateKeyPair('ec');
    const rogue = createRootCertificate({ ...rogueKeys, now: new Date(now - DAY), commonName: 'Test Root' }); // same name, other key
    writeFileSync(file, crlToPem(buildCrl({
      issuer: rogue, signingKey: rogueKeys.privateKey, revoked: [], crlNumber: 9, thisUpdate: new Date(now), nextUpdate: new Date(now + 7 * DAY),
    })));
    await watcher.check();
    expect(watcher.loaded?.crlNumber).toBe('1');
    expect(records.find((r) => r.level === ERROR)).toMatchObject({ code: 'TRUST_CRL_INVALID' });
  });

  it('says nothing while the CRL is young, warns well before nextUpdate, errors once past it', async () => {
    const start = Date.now();
    let now = start;
    writeFileSync(file, crl(5, start)); // a 7-day CRL issued now
    const { log, records } = capture();
    watcher = new CrlWatcher({ file, apply: () => undefined, log, now: () => now, pollMs: 3_600_000 });
    await watcher.check();
    expect(records.filter((r) => r.level >= WARN)).toEqual([]);

    now = start + 5.5 * DAY; // 36 h left of 168: inside the default window (a quarter, 42 h)
    await watcher.check();
    const warning = records.find((r) => r.level === WARN);
    expect(warning?.msg).toMatch(/nextUpdate soon/);
    expect(warning?.['hoursLeft']).toBe(36);

    now = start + 7 * DAY + 60_000;
    await watcher.check();
    expect(records.find((r) => r.level === ERROR)?.msg).toMatch(/past its nextUpdate/);

    // re-issued: the warnings stop
    const count = records.length;
    writeFileSync(file, crl(6, now));
    await watcher.check();
    expect(records.slice(count).filter((r) => r.level >= WARN)).toEqual([]);
  });
});
