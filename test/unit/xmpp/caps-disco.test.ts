import { describe, expect, it } from 'vitest';
import { buildCaps, capsVer, capsVerificationString, parseCaps } from '../../../protocols/xmpp/caps.js';
import { buildDiscoInfoResult, parseDiscoInfo, type DiscoInfo } from '../../../protocols/xmpp/disco.js';
import { NS } from '../../../protocols/xmpp/namespaces.js';
import { xml } from '@xmpp/client';

// Golden vectors: XEP-0115 §5.2 (simple) and §5.3 (complex, with an extended form).
const SIMPLE: DiscoInfo = {
  identities: [{ category: 'client', type: 'pc', name: 'Exodus 0.9.1' }],
  features: ['http://jabber.org/protocol/caps', 'http://jabber.org/protocol/disco#info', 'http://jabber.org/protocol/disco#items', 'http://jabber.org/protocol/muc'],
};
const COMPLEX: DiscoInfo = {
  identities: [
    { category: 'client', type: 'pc', lang: 'en', name: 'Psi 0.11' },
    { category: 'client', type: 'pc', lang: 'el', name: 'Ψ 0.11' },
  ],
  features: ['http://jabber.org/protocol/caps', 'http://jabber.org/protocol/disco#info', 'http://jabber.org/protocol/disco#items', 'http://jabber.org/protocol/muc'],
  forms: [{
    formType: 'urn:xmpp:dataforms:softwareinfo',
    fields: [
      { var: 'ip_version', values: ['ipv6', 'ipv4'] },
      { var: 'os', values: ['Mac'] },
      { var: 'os_version', values: ['10.5.1'] },
      { var: 'software', values: ['Psi'] },
      { var: 'software_version', values: ['0.11'] },
    ],
  }],
};

describe('XEP-0115 verification string', () => {
  it('matches the simple example of §5.2', () => {
    expect(capsVerificationString(SIMPLE)).toBe(
      'client/pc//Exodus 0.9.1<http://jabber.org/protocol/caps<http://jabber.org/protocol/disco#info<http://jabber.org/protocol/disco#items<http://jabber.org/protocol/muc<',
    );
    expect(capsVer(SIMPLE)).toBe('QgayPKawpkPSDYmwT/WM94uAlu0=');
  });

  it('matches the complex example of §5.3 (languages, forms, sorted values)', () => {
    expect(capsVer(COMPLEX)).toBe('q07IKJEyjvHSyhy//CH0CxmKi8w=');
  });

  it('does not depend on the order identities and features are listed in', () => {
    const shuffled: DiscoInfo = { identities: [...COMPLEX.identities].reverse(), features: [...COMPLEX.features].reverse(), forms: COMPLEX.forms ?? [] };
    expect(capsVer(shuffled)).toBe(capsVer(COMPLEX));
  });

  it('puts node, hash and ver in presence and reads them back', () => {
    const c = buildCaps('urn:intercloud:gateway:0', SIMPLE);
    const presence = xml('presence', {}, c);
    expect(parseCaps(presence)).toEqual({ node: 'urn:intercloud:gateway:0', hash: 'sha-1', ver: 'QgayPKawpkPSDYmwT/WM94uAlu0=' });
    expect(parseCaps(xml('presence'))).toBeUndefined();
  });
});

describe('XEP-0030 disco#info', () => {
  it('round-trips identities, features and an extended form; the caps ver survives the wire', () => {
    const query = buildDiscoInfoResult(COMPLEX);
    expect(query.is('query', NS.DISCO_INFO)).toBe(true);
    const back = parseDiscoInfo(query);
    expect(back).toBeDefined();
    expect(capsVer(back as DiscoInfo)).toBe('q07IKJEyjvHSyhy//CH0CxmKi8w=');
  });

  it('returns undefined for an element that is not a disco#info query', () => {
    expect(parseDiscoInfo(xml('query', { xmlns: NS.DISCO_ITEMS }))).toBeUndefined();
  });
});
