import { describe, expect, it } from 'vitest';
import { parseTsigKeyFile } from '../../../protocols/dns/index.js';

describe('parseTsigKeyFile', () => {
  it('reads the key tsig-keygen writes', () => {
    const text = 'key "intercloud-update" {\n\talgorithm hmac-sha256;\n\tsecret "GfnjGw05YMTulpthAORMEi9TMu/m/xogEnFosVTqdR0=";\n};\n';
    expect(parseTsigKeyFile(text)).toEqual({ name: 'intercloud-update', algorithm: 'hmac-sha256', secret: 'GfnjGw05YMTulpthAORMEi9TMu/m/xogEnFosVTqdR0=' });
  });

  it('refuses a file without a key, or with an algorithm it cannot sign with, never quoting the secret', () => {
    expect(() => parseTsigKeyFile('zone "x" { type primary; };')).toThrow(expect.objectContaining({ code: 'DNS_CONFIG' }));
    const md5 = 'key "k" { algorithm hmac-md5; secret "c2VjcmV0LXZhbHVl"; };';
    expect(() => parseTsigKeyFile(md5)).toThrow(expect.objectContaining({ code: 'DNS_CONFIG', message: expect.not.stringContaining('c2VjcmV0LXZhbHVl') }));
  });
});
