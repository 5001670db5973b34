/** The vim25 SOAP codec and the model ↔ VirtualMachineConfigSpec mapping (pure). */
import { describe, expect, it } from 'vitest';
import { list, obj, parseResponse, requestEnvelope, text } from '../../../adapters/hypervisor/vmware/soap.js';
import { configSpec, parseDatastorePath, vmFromConfig } from '../../../adapters/hypervisor/vmware/vm-mapping.js';
import { flatDescriptor, flatOf } from '../../../adapters/hypervisor/vmware/vmware-hypervisor.js';
import { renderXml } from '../../../protocols/xml/index.js';
import { isIntercloudError } from '../../../protocols/errors/index.js';
import type { VirtualMachine } from '../../../protocols/vm/index.js';

const ENV = (body: string): string => `<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema"><soapenv:Body>${body}</soapenv:Body></soapenv:Envelope>`;

describe('vim25 soap codec', () => {
  it('writes a method call on a managed object with escaped arguments', () => {
    const xml = requestEnvelope('Login', { type: 'SessionManager', value: 'SessionManager' }, []);
    expect(xml).toContain('<Login xmlns="urn:vim25">');
    expect(xml).toContain('<_this type="SessionManager">SessionManager</_this>');
  });

  it('reads a fault (as vcsim sends InvalidLogin) with its name and string', () => {
    const r = parseResponse(ENV('<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>Login failure</faultstring><detail><InvalidLoginFault xmlns="urn:vim25" xsi:type="InvalidLogin"></InvalidLoginFault></detail></soapenv:Fault>'), 'Login');
    expect(r).toMatchObject({ fault: { faultName: 'InvalidLogin', faultString: 'Login failure' } });
  });

  it('reads typed values, references and repeated elements', () => {
    const r = parseResponse(ENV('<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><objects><obj type="VirtualMachine">vm-1</obj><propSet><name>name</name><val xsi:type="xsd:string">web1</val></propSet><propSet><name>runtime.powerState</name><val xsi:type="VirtualMachinePowerState">poweredOn</val></propSet></objects></returnval></RetrievePropertiesExResponse>'), 'RetrievePropertiesEx');
    if (!('value' in r)) throw new Error('expected a value');
    const objects = list(obj(r.value)['objects']).map(obj);
    expect(obj(objects[0]!['obj'])).toEqual({ _type: 'ManagedObjectReference', type: 'VirtualMachine', value: 'vm-1' });
    const props = list(objects[0]!['propSet']).map(obj);
    expect(props.map((p) => [text(p['name']), text(p['val'])])).toEqual([['name', 'web1'], ['runtime.powerState', 'poweredOn']]);
  });

  it('refuses what is not a soap envelope with VMWARE_RESPONSE_INVALID', () => {
    for (const bad of ['<html>500</html>', 'not xml', ENV('')]) {
      let err: unknown;
      try {
        parseResponse(bad, 'X');
      } catch (e) {
        err = e;
      }
      expect(isIntercloudError(err, 'VMWARE_RESPONSE_INVALID')).toBe(true);
    }
  });
});

describe('model ↔ vSphere config', () => {
  const vm: VirtualMachine = {
    name: 'web1', uuid: '6f1c2a4e-0b7d-4c55-9a43-2f0e3d1b8c77', firmware: 'uefi', cpu: { count: 4, topology: { sockets: 2, cores: 2, threads: 1 } },
    memoryBytes: 512 * 1024 * 1024,
    disks: [{ capacityBytes: 10 * 1024 ** 3, bus: 'virtio', targetDev: 'vda' }, { capacityBytes: 1024 ** 3, bus: 'sata', file: { href: '[DS] d.vmdk' } }],
    cdroms: [{ bus: 'ide' }],
    nics: [{ mac: '52:54:00:aa:bb:cc', model: 'virtio', network: 'prod' }],
  };

  it('writes a config spec and reports what vSphere cannot hold', () => {
    const { spec, entries } = configSpec(vm, { datastore: 'DS', networks: ['VM Network'], defaultNetwork: 'VM Network' });
    const xml = renderXml(spec, false);
    expect(xml).toContain('<numCPUs>4</numCPUs>');
    expect(xml).toContain('<numCoresPerSocket>2</numCoresPerSocket>');
    expect(xml).toContain('<memoryMB>512</memoryMB>');
    expect(xml).toContain('<firmware>efi</firmware>');
    expect(xml).toContain('<macAddress>52:54:00:aa:bb:cc</macAddress>');
    expect(xml).toContain('<fileName>[DS] web1/web1-disk0.vmdk</fileName>');
    expect(xml).toContain('<fileName>[DS] d.vmdk</fileName>');
    const paths = entries.map((e) => `${e.severity}:${e.path}`);
    expect(paths).toEqual(expect.arrayContaining(['note:disks[0].bus', 'loss:disks[0].targetDev', 'loss:cdroms[0]', 'note:nics[0].model', 'note:nics[0].network', 'note:disks[0].file']));
  });

  it('reads a config back into the model', () => {
    const config = {
      uuid: '6F1C2A4E-0B7D-4C55-9A43-2F0E3D1B8C77', firmware: 'efi', guestId: 'otherGuest64',
      hardware: {
        numCPU: '4', numCoresPerSocket: '2', memoryMB: '512',
        device: [
          { _type: 'ParaVirtualSCSIController', key: '1000' },
          { _type: 'VirtualDisk', key: '2000', controllerKey: '1000', capacityInBytes: String(10 * 1024 ** 3), backing: { _type: 'VirtualDiskFlatVer2BackingInfo', fileName: '[DS] web1/web1-disk0.vmdk' } },
          { _type: 'VirtualVmxnet3', key: '4000', macAddress: '52:54:00:AA:BB:CC', backing: { _type: 'VirtualEthernetCardNetworkBackingInfo', deviceName: 'VM Network' } },
        ],
      },
    };
    const back = vmFromConfig('web1', config);
    expect(back).toMatchObject({
      name: 'web1', uuid: vm.uuid, firmware: 'uefi', cpu: { count: 4, topology: { sockets: 2, cores: 2, threads: 1 } }, memoryBytes: 512 * 1024 * 1024,
      disks: [{ capacityBytes: 10 * 1024 ** 3, bus: 'scsi', controllerModel: 'pvscsi', format: 'vmdk', file: { href: '[DS] web1/web1-disk0.vmdk' } }],
      nics: [{ mac: '52:54:00:aa:bb:cc', model: 'vmxnet3', network: 'VM Network' }],
    });
  });

  it('names datastore paths and flat extents', () => {
    expect(parseDatastorePath('[LocalDS_0] a/b c.vmdk')).toEqual({ datastore: 'LocalDS_0', path: 'a/b c.vmdk' });
    expect(parseDatastorePath('/var/x')).toBeUndefined();
    expect(flatOf('[DS] a/x.vmdk')).toBe('[DS] a/x-flat.vmdk');
    expect(flatOf('[DS] a/x-flat.vmdk')).toBe('[DS] a/x-flat.vmdk');
    expect(flatDescriptor('x-flat.vmdk', 1000)).toContain('RW 2 VMFS "x-flat.vmdk"');
  });
});
