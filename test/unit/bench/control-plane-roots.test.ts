import { describe, expect, it } from 'vitest';
import { rootsOf } from '../../../bench/control-plane/roots.js';

const prosody = (domain: string, port: number): Record<string, unknown> => ({
  host: '127.0.0.1', port, domain, pubsubJid: `pubsub.${domain}`, tls: { ca: '/ca.pem', servername: domain }, pidFile: `/run/${domain}.pid`,
});

describe('control-plane bench: the Roots services.json names', () => {
  it('is the one Prosody when that is all there is', () => {
    const roots = rootsOf({ prosody: prosody('intercloud.test', 15222), rabbitmq: { url: 'amqps://x' }, slixmpp: { python: '/usr/bin/python3' } });
    expect(roots.map((r) => [r.key, r.domain, r.port, r.servername])).toEqual([['prosody', 'intercloud.test', 15222, 'intercloud.test']]);
  });

  it('adds every other key of Prosody\'s shape, after `prosody`', () => {
    const roots = rootsOf({ 'prosody-b': prosody('b.intercloud.test', 15223), prosody: prosody('intercloud.test', 15222), pki: { dir: '/pki' } });
    expect(roots.map((r) => r.key)).toEqual(['prosody', 'prosody-b']);
  });

  it('follows `roots.list` when services.json has it', () => {
    const services = {
      roots: { s2s: { secureAuth: true }, list: [{ name: 'prosody2', domain: 'root2.test' }, { name: 'prosody', domain: 'intercloud.test' }] },
      prosody: prosody('intercloud.test', 15222), prosody2: prosody('root2.test', 15223), prosody3: prosody('root3.test', 15224),
    };
    expect(rootsOf(services).map((r) => r.key)).toEqual(['prosody2', 'prosody']);
  });

  it('takes the keys given, and refuses one that is not a Root', () => {
    const services = { prosody: prosody('intercloud.test', 15222), other: prosody('o.test', 15224), pki: { dir: '/pki' } };
    expect(rootsOf(services, ['other']).map((r) => r.key)).toEqual(['other']);
    expect(() => rootsOf(services, ['pki'])).toThrow(/no prosody-shaped root under 'pki'/);
    expect(() => rootsOf({ pki: { dir: '/pki' } })).toThrow(/no Root/);
  });
});
