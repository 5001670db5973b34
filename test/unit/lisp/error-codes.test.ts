import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LISP_ERRORS } from '../../../protocols/lisp/index.js';

describe('lisp error codes', () => {
  it('are all LISP_-prefixed and documented in the area README', () => {
    const readme = readFileSync(resolve(import.meta.dirname, '../../../protocols/lisp/README.md'), 'utf8');
    for (const code of Object.keys(LISP_ERRORS)) {
      expect(code).toMatch(/^LISP_[A-Z_]+$/);
      expect(readme, code).toContain(`| \`${code}\` |`);
    }
  });
});
