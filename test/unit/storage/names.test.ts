import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { StoreErrors, validateBucketName, validateObjectKey } from '../../../adapters/storage/index.js';
import { isIntercloudError } from '../../../protocols/errors/index.js';

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return isIntercloudError(e) ? e.code : 'not an IntercloudError';
  }
  return undefined;
}

describe('object-store names', () => {
  it('takes ordinary bucket names', () => {
    for (const b of ['abc', 'sub-cloud-a.backups', 'a'.repeat(63), '0day']) expect(validateBucketName(b)).toBe(b);
  });

  it('refuses bucket names S3 does not take or reserves', () => {
    for (const b of ['ab', 'a'.repeat(64), 'Upper', 'under_score', '-lead', 'trail-', 'a..b', '192.168.1.1', 'xn--punycode', 'x-s3alias', 'a/b', 'a b', '']) {
      expect(codeOf(() => validateBucketName(b)), b).toBe('STORE_NAME_INVALID');
    }
  });

  it('takes keys with slashes, spaces and non-ASCII text', () => {
    for (const k of ['a', 'photos/2026/12/x.jpg', 'with space', 'ünïcødé/😀', 'a//b', '.hidden', 'x/..y', 'k'.repeat(1024)]) expect(validateObjectKey(k)).toBe(k);
  });

  it('refuses keys a client or proxy would rewrite, and oversized or malformed ones', () => {
    const refused = ['', '/abs', '../etc/passwd', 'a/../b', 'a/./b', '.', 'a/..', 'nul\u0000', 'new\nline', 'del\u007f', 'lone\uD800', 'k'.repeat(1025), 'é'.repeat(513)];
    for (const k of refused) expect(codeOf(() => validateObjectKey(k)), JSON.stringify(k.slice(0, 20))).toBe('STORE_NAME_INVALID');
  });

  it('documents every error code in the README', () => {
    const readme = readFileSync(join(import.meta.dirname, '../../../adapters/storage/README.md'), 'utf8');
    for (const [code, info] of Object.entries(StoreErrors)) {
      expect(readme).toContain(`| \`${code}\` | ${info.retryable ? 'yes' : 'no'} | ${info.doc} |`);
    }
  });
});
