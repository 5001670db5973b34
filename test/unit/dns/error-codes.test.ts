import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DNS_ERRORS } from '../../../protocols/dns/index.js';

describe('dns error codes', () => {
  it('are all DNS_-prefixed and documented in the area README', () => {
    const readme = readFileSync(resolve(import.meta.dirname, '../../../protocols/dns/README.md'), 'utf8');
    for (const code of Object.keys(DNS_ERRORS)) {
      expect(code).toMatch(/^DNS_[A-Z_]+$/);
      expect(readme, code).toContain(`| \`${code}\` |`);
    }
  });
});
