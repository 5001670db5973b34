import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TIME_ERRORS } from '../../../protocols/time/index.js';

describe('time error codes', () => {
  it('are all TIME_-prefixed and documented in the area README', () => {
    const readme = readFileSync(resolve(import.meta.dirname, '../../../protocols/time/README.md'), 'utf8');
    for (const code of Object.keys(TIME_ERRORS)) {
      expect(code).toMatch(/^TIME_[A-Z_]+$/);
      expect(readme, code).toContain(`| \`${code}\` |`);
    }
  });
});
