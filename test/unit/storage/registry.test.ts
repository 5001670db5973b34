/** The object-store registry: explicit kinds, strict schemas, local paths resolved against the config file's folder. */
import { describe, expect, it } from 'vitest';
import { objectStoreConfigPaths, OBJECT_STORES, resolveObjectStorePaths, safeParseObjectStoreSettings } from '../../../adapters/storage/index.js';

describe('object-store registry', () => {
  it('registers s3 and fake, and names the files an s3 config points at', () => {
    expect(Object.keys(OBJECT_STORES).sort()).toEqual(['fake', 's3']);
    expect(objectStoreConfigPaths('s3').sort()).toEqual([['caFile'], ['secretAccessKeyFile']]);
    expect(objectStoreConfigPaths('fake')).toEqual([]);
  });

  it('reports every problem with its path, and an unknown kind at kind', () => {
    const bad = safeParseObjectStoreSettings('s3', { name: 'a', endpoint: 'http://h:1/bucket', region: 'EU', accessKeyId: 'k', secretAccessKeyFile: 's', extra: 1 });
    expect(bad.success).toBe(false);
    const paths = bad.success ? [] : bad.issues.map((i) => i.path.join('.'));
    expect(paths).toEqual(expect.arrayContaining(['config.endpoint', 'config.region', 'config']));
    const unknown = safeParseObjectStoreSettings('ceph', {});
    expect(unknown.success ? [] : unknown.issues.map((i) => i.path.join('.'))).toEqual(['kind']);
  });

  it('resolves relative local paths against the config folder and leaves absolute ones', () => {
    const parsed = safeParseObjectStoreSettings('s3', {
      name: 'a', endpoint: 'https://store.example:8443', region: 'eu-west', accessKeyId: 'k', secretAccessKeyFile: 'secrets/s3-key', caFile: '/etc/ca.pem',
    });
    if (!parsed.success) throw new Error(JSON.stringify(parsed.issues));
    const resolved = resolveObjectStorePaths(parsed.data, '/etc/intercloud');
    expect(resolved.config).toMatchObject({ secretAccessKeyFile: '/etc/intercloud/secrets/s3-key', caFile: '/etc/ca.pem', partSizeBytes: 16 * 1024 * 1024 });
  });
});
