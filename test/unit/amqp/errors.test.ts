import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { XFER_ERRORS } from '../../../protocols/amqp/index.js';

describe('transfer error codes', () => {
  it('are all XFER_-prefixed and documented in the README table', () => {
    const readme = readFileSync(join(import.meta.dirname, '../../../protocols/amqp/README.md'), 'utf8');
    for (const code of Object.keys(XFER_ERRORS)) {
      expect(code.startsWith('XFER_')).toBe(true);
      expect(readme).toContain(`| \`${code}\` |`);
    }
  });
});
