/**
 * Every error code the descriptors area declares is documented in protocols/ovf/README.md.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { listErrorCodes } from '../../../protocols/errors/index.js';
import '../../../protocols/convert/index.js';
import '../../../protocols/ova/index.js';

describe('descriptor error codes', () => {
  it('are all in the README table', () => {
    const readme = readFileSync(new URL('../../../protocols/ovf/README.md', import.meta.url), 'utf8');
    const codes = listErrorCodes().filter((c) => c.area === 'ovf' || c.area === 'vm');
    expect(codes.length).toBeGreaterThan(20);
    for (const c of codes) expect(readme, c.code).toContain(`\`${c.code}\``);
  });
});
