/**
 * Bad input and faults of the VMware adapter against vcsim: each a coded error with the
 * backend's fields (SOAP fault name, TLS verification code, socket error).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHypervisor } from '../../../adapters/hypervisor/index.js';
import { isIntercloudError } from '../../../protocols/errors/index.js';
import type { IntercloudError } from '../../../protocols/errors/index.js';
import { vmwareConfig } from './env.js';

async function failure(p: Promise<unknown>): Promise<IntercloudError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(isIntercloudError(err), `expected an IntercloudError, got ${String(err)}`).toBe(true);
  return err as IntercloudError;
}

describe('vmware adapter: faults', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'hv-vmw-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('bad credentials: VMWARE_AUTH with the fault name InvalidLogin', async () => {
    const hv = createHypervisor('vmware', vmwareConfig({ password: 'wrong-password' }));
    const err = await failure(hv.listVms());
    expect(err.code).toBe('VMWARE_AUTH');
    expect(err.details['faultName']).toBe('InvalidLogin');
    await hv.close();
  });

  it('a certificate that does not verify against the pinned ca: VMWARE_TLS', async () => {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
      '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'other-ca.pem'), '-subj', '/CN=not-vcsim'], { stdio: 'ignore' });
    const hv = createHypervisor('vmware', vmwareConfig({ caFile: join(dir, 'other-ca.pem') }));
    const err = await failure(hv.listVms());
    expect(err.code).toBe('VMWARE_TLS');
    expect(typeof err.details['tlsCode']).toBe('string');
    await hv.close();
  });

  it('unreachable endpoint: VMWARE_UNREACHABLE with the socket error', async () => {
    const hv = createHypervisor('vmware', vmwareConfig({ url: 'https://127.0.0.1:1/sdk' }));
    const err = await failure(hv.listVms());
    expect(err.code).toBe('VMWARE_UNREACHABLE');
    expect(err.details['errno']).toBe('ECONNREFUSED');
    await hv.close();
  });

  it('an unknown datastore in the config: HV_CONFIG_INVALID naming it', async () => {
    const hv = createHypervisor('vmware', vmwareConfig({ datastore: 'NoSuchDS' }));
    const err = await failure(hv.hostCapacity());
    expect(err.code).toBe('HV_CONFIG_INVALID');
    expect(err.message).toContain("'NoSuchDS'");
    await hv.close();
  });

  it('a config that is not https is refused before connecting', () => {
    let err: unknown;
    try {
      createHypervisor('vmware', vmwareConfig({ url: 'http://127.0.0.1:24443/sdk' }));
    } catch (e) {
      err = e;
    }
    expect(isIntercloudError(err, 'HV_CONFIG_INVALID')).toBe(true);
  });

  it('a model attaching a datastore file that is not there: HV_MODEL_INVALID naming the model path, nothing defined', async () => {
    const hv = createHypervisor('vmware', vmwareConfig());
    const err = await failure(hv.defineVm({
      name: `vf-${Date.now()}`, firmware: 'bios', cpu: { count: 1 }, memoryBytes: 32 * 1024 * 1024,
      disks: [{ capacityBytes: 1024 * 1024, bus: 'scsi', file: { href: '[LocalDS_0] missing/none.vmdk' } }], cdroms: [], nics: [],
    }));
    expect(err.code).toBe('HV_MODEL_INVALID');
    expect(err.details['path']).toBe('disks[0].file.href');
    expect((await hv.listVms()).some((v) => v.name.startsWith('vf-'))).toBe(false);
    await hv.close();
  });

  it('an unknown adapter name: HV_UNKNOWN_BACKEND listing the known ones', () => {
    expect(() => createHypervisor('hyper-v', {})).toThrow(/'libvirt', 'vmware', 'fake'/);
  });
});
