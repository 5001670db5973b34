import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TRUST_ERRORS } from '../../../protocols/trust/index.js';

describe('trust error codes', () => {
  it('are all TRUST_-prefixed and documented in the area README', () => {
    const readme = readFileSync(resolve(import.meta.dirname, '../../../protocols/trust/README.md'), 'utf8');
    for (const code of Object.keys(TRUST_ERRORS)) {
      expect(code).toMatch(/^TRUST_[A-Z_]+$/);
      expect(readme, code).toContain(`| \`${code}\` |`);
    }
  });
});
