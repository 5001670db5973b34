import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { listErrorCodes } from '../../../protocols/errors/index.js';
import '../../../agent/sequencer/index.js';
import '../../../agent/migration/index.js';
import '../../../agent/subcontract/index.js';
import '../../../agent/config/index.js';
import '../../../agent/api/index.js';
import '../../../agent/cli/output.js';

describe('the agent error codes', () => {
  it('are each documented in the README', () => {
    const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    const mine = listErrorCodes().filter((c) => ['sequencer', 'migration', 'subcontract', 'config', 'api', 'cli'].includes(c.area));
    expect(mine.length).toBeGreaterThan(15);
    const missing = mine.filter((c) => !readme.includes(`| \`${c.code}\` | ${c.doc} |`)).map((c) => c.code);
    expect(missing).toEqual([]);
  });

  it('include the command line\'s own usage code', () => {
    expect(listErrorCodes().filter((c) => c.area === 'cli').map((c) => c.code)).toContain('CLI_USAGE');
  });
});
