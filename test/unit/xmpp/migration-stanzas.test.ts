import { xml } from '@xmpp/client';
import { describe, expect, it } from 'vitest';
import {
  NS_MIGRATION, buildInstantiate, buildMigrationFailure, buildMigrationState, buildOfferRequest, buildSignature, migrationRequestPayload,
  parseMigrationFailure, parseMigrationRequest, parseMigrationState, parseStanzaError,
} from '../../../protocols/xmpp/index.js';

const sha = 'a'.repeat(64);
const SIG = '{"envelope":"opaque to the codec"}';

describe('migration stanzas', () => {
  it('round-trips instantiate, commit and release', () => {
    const req = { offerId: 'o-1', descriptor: '<?xml version="1.0"?><Envelope>&amp;</Envelope>', digests: { '0': sha, '1': 'b'.repeat(64) }, addresses: ['10.1.0.5', '2001:db8::5'] };
    expect(parseMigrationRequest(buildInstantiate(req, SIG))).toEqual({ type: 'instantiate', request: req, signature: SIG });
    expect(parseMigrationRequest(buildOfferRequest('commit', 'o-1', SIG))).toEqual({ type: 'commit', offerId: 'o-1', signature: SIG });
    expect(parseMigrationRequest(buildOfferRequest('release', 'o-1', SIG))).toEqual({ type: 'release', offerId: 'o-1', signature: SIG });
    expect(parseMigrationState(xml('iq', {}, buildMigrationState('running')))).toBe('running');
  });

  it('carries the source\'s signed EID hand-over in instantiate, as its JSON text', () => {
    const handOver = JSON.stringify({ v: 1, type: 'lisp/eid-hand-over', payload: { eids: ['10.1.0.5/32'], from: 'cloud-a', to: 'cloud-b', offerId: 'o-1' }, sig: 'x<&>' });
    const req = { offerId: 'o-1', descriptor: '<Envelope/>', digests: { '0': sha }, addresses: ['10.1.0.5'], handOver };
    expect(parseMigrationRequest(buildInstantiate(req, SIG))).toEqual({ type: 'instantiate', request: req, signature: SIG });
    const twice = xml('instantiate', { xmlns: NS_MIGRATION, offer: 'o' }, xml('descriptor', { format: 'ovf' }, 'x'), xml('disk', { id: '0', sha256: sha }),
      xml('hand-over', {}, '{}'), xml('hand-over', {}, '{}'));
    expect(() => parseMigrationRequest(twice)).toThrow(expect.objectContaining({ code: 'XMPP_MALFORMED' }));
    const empty = xml('instantiate', { xmlns: NS_MIGRATION, offer: 'o' }, xml('descriptor', { format: 'ovf' }, 'x'), xml('disk', { id: '0', sha256: sha }), xml('hand-over', {}));
    expect(() => parseMigrationRequest(empty)).toThrow(expect.objectContaining({ code: 'XMPP_MALFORMED' }));
  });

  it('rejects malformed requests with coded errors', () => {
    const bad = (el: ReturnType<typeof xml>) => () => parseMigrationRequest(el);
    expect(bad(xml('commit', { xmlns: 'urn:other' }))).toThrow(expect.objectContaining({ code: 'XMPP_MALFORMED' }));
    expect(bad(xml('commit', { xmlns: NS_MIGRATION }))).toThrow(expect.objectContaining({ code: 'XMPP_MALFORMED' }));
    expect(bad(xml('commit', { xmlns: NS_MIGRATION, offer: 'bad id!' }))).toThrow(expect.objectContaining({ code: 'XMPP_MALFORMED' }));
    expect(bad(xml('explode', { xmlns: NS_MIGRATION, offer: 'o' }))).toThrow(/not a migration request/);
    expect(bad(xml('instantiate', { xmlns: NS_MIGRATION, offer: 'o' }, xml('descriptor', { format: 'ovf' }, 'x')))).toThrow(/disk' is missing/);
    expect(bad(xml('instantiate', { xmlns: NS_MIGRATION, offer: 'o' }, xml('descriptor', { format: 'vmx' }, 'x'), xml('disk', { id: '0', sha256: sha })))).toThrow(/not 'ovf'/);
    expect(bad(xml('instantiate', { xmlns: NS_MIGRATION, offer: 'o' }, xml('descriptor', { format: 'ovf' }, 'x'), xml('disk', { id: '0', sha256: 'xyz' })))).toThrow(expect.objectContaining({ code: 'XMPP_MALFORMED' }));
    expect(bad(xml('instantiate', { xmlns: NS_MIGRATION, offer: 'o' }, xml('descriptor', { format: 'ovf' }, 'x'), xml('disk', { id: '0', sha256: sha }), xml('disk', { id: '0', sha256: sha })))).toThrow(/more than once/);
    expect(() => buildInstantiate({ offerId: 'o', descriptor: 'x'.repeat(300_000), digests: { '0': sha }, addresses: [] }, SIG)).toThrow(expect.objectContaining({ code: 'XMPP_OVERSIZED' }));
    expect(bad(xml('instantiate', { xmlns: NS_MIGRATION, offer: 'o' }, xml('descriptor', { format: 'ovf' }, 'x'), xml('disk', { id: '0', sha256: sha }), xml('address', {}, 'not-an-ip')))).toThrow(/not an ip address/);
    expect(() => parseMigrationState(xml('iq', {}, xml('state', { xmlns: NS_MIGRATION, value: 'maybe' })))).toThrow(expect.objectContaining({ code: 'XMPP_MALFORMED' }));
  });

  it('refuses an unsigned request (issue 12 finding 7)', () => {
    const unsigned = [
      xml('commit', { xmlns: NS_MIGRATION, offer: 'o-1' }),
      xml('release', { xmlns: NS_MIGRATION, offer: 'o-1' }),
      xml('release', { xmlns: NS_MIGRATION, offer: 'o-1' }, buildSignature(' ')),
      xml('instantiate', { xmlns: NS_MIGRATION, offer: 'o' }, xml('descriptor', { format: 'ovf' }, 'x'), xml('disk', { id: '0', sha256: sha })),
      xml('commit', { xmlns: NS_MIGRATION, offer: 'o-1' }, buildSignature(SIG), buildSignature(SIG)),
    ];
    for (const el of unsigned) expect(() => parseMigrationRequest(el)).toThrow(expect.objectContaining({ code: 'XMPP_MALFORMED' }));
  });

  it('signs what the request does, for whom and with what: any change changes the payload', () => {
    const req = { offerId: 'o-1', descriptor: '<Envelope/>', digests: { '1': 'b'.repeat(64), '0': sha }, addresses: ['10.1.0.5'] };
    const p = migrationRequestPayload({ type: 'instantiate', request: req }, 'cloud-b');
    expect(p).toEqual({
      request: 'instantiate', offerId: 'o-1', target: 'cloud-b',
      // sha256('<Envelope/>'), from coreutils: printf '<Envelope/>' | sha256sum
      descriptorSha256: 'cbed3b27295a309da3ce42224e915b8ccb87354e24d40145475bca384c21b5f7',
      digests: { '0': sha, '1': 'b'.repeat(64) }, addresses: ['10.1.0.5'],
    });
    const differs = [
      migrationRequestPayload({ type: 'instantiate', request: { ...req, descriptor: '<Envelope />' } }, 'cloud-b'),
      migrationRequestPayload({ type: 'instantiate', request: { ...req, addresses: ['10.1.0.6'] } }, 'cloud-b'),
      migrationRequestPayload({ type: 'instantiate', request: { ...req, digests: { '0': sha } } }, 'cloud-b'),
      migrationRequestPayload({ type: 'instantiate', request: req }, 'cloud-c'),
    ];
    for (const d of differs) expect(d).not.toEqual(p);
    expect(migrationRequestPayload({ type: 'commit', offerId: 'o-1' }, 'cloud-b')).toEqual({ request: 'commit', offerId: 'o-1', target: 'cloud-b' });
    expect(migrationRequestPayload({ type: 'release', offerId: 'o-1' }, 'cloud-b')).not.toEqual(migrationRequestPayload({ type: 'commit', offerId: 'o-1' }, 'cloud-b'));
  });

  it('carries the target error code in a refusal', () => {
    const err = buildMigrationFailure('MIGRATE_NO_RESERVATION', 'no reservation', false);
    const info = parseStanzaError(err);
    expect(info).toMatchObject({ type: 'cancel', condition: 'not-acceptable', text: 'no reservation' });
    expect(parseMigrationFailure(info.application)).toEqual({ code: 'MIGRATE_NO_RESERVATION', retryable: false });
    expect(parseStanzaError(buildMigrationFailure('not a code', 'x', true)).type).toBe('wait');
    expect(parseMigrationFailure(parseStanzaError(buildMigrationFailure('not a code', 'x', true)).application)).toEqual({ code: 'MIGRATE_FAILED', retryable: true });
    expect(parseMigrationFailure(xml('failure', { xmlns: 'urn:x', code: 'A_B' }))).toBeUndefined();
  });
});
