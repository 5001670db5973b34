import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../../protocols/trust/index.js';

describe('canonicalJson (RFC 8785)', () => {
  it('sorts keys by UTF-16 code units and writes no whitespace', () => {
    // RFC 8785 §3.2.3 sorting example keys.
    const value = { '\u20ac': 'Euro Sign', '\r': 'Carriage Return', '\ufb33': 'Hebrew Letter Dalet With Dagesh', '1': 'One', '\ud83d\ude00': 'Emoji: Grinning Face', '\u0080': 'Control', '\u00f6': 'Latin Small Letter O With Diaeresis' };
    const text = canonicalJson(value);
    const order = ['\\r', '1', '\u0080', '\u00f6', '\u20ac', '\ud83d\ude00', '\ufb33'].map((k) => text.indexOf(`"${k}":`));
    expect(order.every((pos) => pos > 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(canonicalJson({ b: [1, { d: true, c: null }], a: 'x' })).toBe('{"a":"x","b":[1,{"c":null,"d":true}]}');
  });

  it('serialises numbers as ECMAScript does (RFC 8785 §3.2.2.3)', () => {
    expect(canonicalJson([1e21, 1e-7, -0, 0.1, 333333333.33333329, 4.5])).toBe('[1e+21,1e-7,0,0.1,333333333.3333333,4.5]');
  });

  it('rejects what is not JSON data', () => {
    for (const bad of [undefined, Number.NaN, Infinity, 1n, new Date(0), { a: undefined }, [() => 1]]) {
      expect(() => canonicalJson(bad)).toThrowError(expect.objectContaining({ code: 'TRUST_MESSAGE_MALFORMED' }) as Error);
    }
  });

  it('is stable under parse/serialise and under key reordering', () => {
    fc.assert(fc.property(fc.jsonValue(), (v) => {
      const text = canonicalJson(v);
      expect(canonicalJson(JSON.parse(text))).toBe(text);
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
        const reversed = Object.fromEntries(Object.entries(v).reverse());
        expect(canonicalJson(reversed)).toBe(text);
      }
    }));
  });
});
