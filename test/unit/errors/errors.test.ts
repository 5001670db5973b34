import { describe, expect, it } from 'vitest';
import { defineErrorCodes, IntercloudError, isIntercloudError, listErrorCodes } from '../../../protocols/errors/index.js';

describe('IntercloudError', () => {
  const codes = defineErrorCodes('errors-test', {
    ERRTEST_GONE: { doc: 'the thing is gone', retryable: false },
    ERRTEST_BUSY: { doc: 'the thing is busy', retryable: true },
  });

  it('takes retryability from the code table unless overridden', () => {
    expect(new IntercloudError('ERRTEST_GONE', 'gone').retryable).toBe(false);
    expect(new IntercloudError('ERRTEST_BUSY', 'busy').retryable).toBe(true);
    expect(new IntercloudError('ERRTEST_BUSY', 'busy', { retryable: false }).retryable).toBe(false);
    expect(Object.keys(codes)).toEqual(['ERRTEST_GONE', 'ERRTEST_BUSY']);
  });

  it('keeps the cause chain and protocol details in its JSON form', () => {
    const root = new Error('connection reset');
    const err = new IntercloudError('ERRTEST_BUSY', "libvirt(cloud-b): cannot define 'web1'", {
      cause: new Error('virsh failed', { cause: root }),
      details: { exitStatus: 1, stderr: 'error: failed' },
    });
    expect(err.toJSON()).toMatchObject({
      code: 'ERRTEST_BUSY',
      details: { exitStatus: 1 },
      causes: ['virsh failed', 'connection reset'],
    });
    expect(isIntercloudError(err, 'ERRTEST_BUSY')).toBe(true);
    expect(isIntercloudError(err, 'ERRTEST_GONE')).toBe(false);
    expect(isIntercloudError(new Error('x'))).toBe(false);
  });

  it('refuses a code declared by two areas', () => {
    expect(() => defineErrorCodes('other-area', { ERRTEST_GONE: { doc: 'x', retryable: false } })).toThrow(/already declared/);
    expect(listErrorCodes().find((c) => c.code === 'ERRTEST_GONE')?.area).toBe('errors-test');
  });
});
