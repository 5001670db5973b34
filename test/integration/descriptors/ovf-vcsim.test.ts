/**
 * OVF we write is accepted by an independent consumer: govmomi's vcsim (the vCenter simulator the
 * services script starts) through the vSphere API's OvfManager.CreateImportSpec, the call
 * `govc import.ovf` makes. The OVF is written with vSphere device names (`devices: 'vsphere'`). For every VM of the fixtures corpus the import spec must carry no
 * error, and its CPU, memory, disk files and NICs must be ours.
 */
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { readDescriptor } from '../../../protocols/convert/index.js';
import { writeOvf } from '../../../protocols/ovf/index.js';
import type { VirtualMachine } from '../../../protocols/vm/index.js';
import { attr, childrenNamed, decodeDescriptor, escapeText, parseXml, type XmlElement } from '../../../protocols/xml/index.js';
import { vcsim, type VcsimEnv } from '../hypervisor/env.js';
import { allFixtures, fixtureBytes } from '../../unit/descriptors/fixtures.js';


/** A minimal vSphere SOAP session (vim25) with vcsim's pinned certificate. */
class Vim {
  private cookie = '';
  private readonly agent: https.Agent;
  constructor(private readonly env: VcsimEnv) {
    this.agent = new https.Agent({ ca: readFileSync(env.caFile) });
  }

  call(body: string): Promise<XmlElement> {
    return new Promise((resolve, reject) => {
      const req = https.request(this.env.url, { method: 'POST', agent: this.agent, headers: { 'content-type': 'text/xml; charset=utf-8', SOAPAction: 'urn:vim25/6.5', ...(this.cookie ? { cookie: this.cookie } : {}) } }, (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (data += c));
        res.on('end', () => {
          const set = res.headers['set-cookie'];
          if (set?.[0]) this.cookie = set[0].split(';')[0] ?? '';
          try {
            resolve(parseXml(data, 'vcsim response'));
          } catch (err) {
            reject(err instanceof Error ? err : new Error(String(err)));
          }
        });
      });
      req.on('error', reject);
      req.end(`<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>${body}</soapenv:Body></soapenv:Envelope>`);
    });
  }
}

function all(el: XmlElement, local: string): XmlElement[] {
  return [...(el.local === local ? [el] : []), ...el.children.flatMap((c) => all(c, local))];
}

function corpusVms(): Array<{ label: string; vm: VirtualMachine }> {
  const out: Array<{ label: string; vm: VirtualMachine }> = [];
  for (const f of allFixtures()) {
    try {
      const vms = readDescriptor(decodeDescriptor(fixtureBytes(f.dir, f.name), f.name), { source: f.name, name: 'image' }).value.vms;
      vms.forEach((vm, i) => out.push({ label: `${f.dir}/${f.name}#${i}`, vm }));
    } catch (err) {
      expect((err as { code?: string }).code).toMatch(/^OVF_/);
    }
  }
  return out;
}

describe('OVF we write, imported by vcsim (OvfManager.CreateImportSpec)', () => {
  const env = vcsim();
  const vim = new Vim(env);
  let pool = '';
  let datastore = '';

  beforeAll(async () => {
    await vim.call(`<Login xmlns="urn:vim25"><_this type="SessionManager">SessionManager</_this><userName>${escapeText(env.user)}</userName><password>${escapeText(env.password)}</password></Login>`);
    const find = async (path: string) => {
      const r = await vim.call(`<FindByInventoryPath xmlns="urn:vim25"><_this type="SearchIndex">SearchIndex</_this><inventoryPath>${escapeText(path)}</inventoryPath></FindByInventoryPath>`);
      return all(r, 'returnval')[0]?.text ?? '';
    };
    datastore = await find(`${env.datacenter}/datastore/${env.datastore}`);
    pool = await find(`${env.datacenter}/host/DC0_C0/Resources`);
    expect(datastore).not.toBe('');
    expect(pool).not.toBe('');
  });

  it('accepts every VM of the corpus with our CPUs, memory, disks and NICs', async () => {
    const vms = corpusVms();
    expect(vms.length).toBeGreaterThan(80);
    let blank = 0;
    for (const [i, { label, vm }] of vms.entries()) {
      // vcsim dereferences Disk/@ovf:fileRef unconditionally (simulator/ovf_manager.go, a nil
      // pointer panic) although DSP0243 §9.1 makes it optional for blank disks: those VMs are
      // counted and left out, not sent.
      if (vm.disks.some((d) => !d.file)) {
        blank++;
        continue;
      }
      const { value: ovf, report } = writeOvf([vm], { devices: 'vsphere' });
      const VSPHERE_NICS = ['e1000', 'e1000e', 'vmxnet3', 'vmxnet2', 'vmxnet', 'pcnet'];
      const virtioNics = vm.nics.filter((n) => n.model !== undefined && !VSPHERE_NICS.includes(n.model)).length;
      expect(report.entries.filter((e) => e.severity === 'loss' && /\.nics\[\d+\]\.model$/.test(e.path)).length, label).toBe(virtioNics);
      const r = await vim.call(
        `<CreateImportSpec xmlns="urn:vim25"><_this type="OvfManager">OvfManager</_this><ovfDescriptor>${escapeText(ovf)}</ovfDescriptor>` +
          `<resourcePool type="ResourcePool">${pool}</resourcePool><datastore type="Datastore">${escapeText(datastore)}</datastore>` +
          `<cisp><locale></locale><deploymentOption></deploymentOption><entityName>ic-desc-${i}</entityName></cisp></CreateImportSpec>`,
      );
      expect(all(r, 'Fault').map((f) => f.children.map((c) => c.text).join(' ')), label).toEqual([]);
      const errs = all(r, 'error').map((e) => all(e, 'localizedMessage').map((m) => m.text).join(' '));
      // vcsim implements neither serial ports (ResourceType 21) nor SATA/NVMe controllers (20),
      // both valid DSP1041 types vSphere itself imports: exactly one error per serial port and per
      // such controller we wrote is its known limitation (devices on them are skipped); any other
      // error is ours.
      const devices = [...vm.disks, ...vm.cdroms];
      const otherStorage = new Set(devices.filter((d) => d.bus === 'sata' || d.bus === 'nvme').map((d) => d.bus)).size;
      // govmomi also spells VMware's 'lsilogicsas' (what ovftool and the corpus's VMware exports
      // write) as 'lsilogic-sas' and refuses the former.
      const sas = vm.disks.some((d) => d.bus === 'scsi' && d.controllerModel === 'lsilogicsas') ? 1 : 0;
      const known = new Set(['unsupported resource type: 21', 'unsupported resource type: 20', "unknown SCSI controller type 'lsilogicsas'"]);
      const limits: string[] = errs.filter((e) => known.has(e));
      expect(limits.length, label).toBe((vm.serialPorts ?? 0) + otherStorage + sas);
      expect(errs.filter((e) => !limits.includes(e)), label).toEqual([]);
      const spec = all(r, 'importSpec')[0];
      expect(spec, label).toBeDefined();
      const cfg = all(spec as XmlElement, 'configSpec')[0] as XmlElement;
      expect(Number(childrenNamed(cfg, 'numCPUs')[0]?.text), label).toBe(vm.cpu.count);
      expect(Number(childrenNamed(cfg, 'memoryMB')[0]?.text), label).toBe(Math.ceil(vm.memoryBytes / 2 ** 20));
      const imported = devices.filter((d) => d.file && d.bus !== 'sata' && d.bus !== 'nvme' && !(sas && d.bus === 'scsi'));
      expect(all(r, 'fileItem').length, label).toBe(imported.length);
      // One ethernet card per NIC. vcsim does not copy rasd:Address into the spec, so MACs are
      // checked by the unit round trips, not here.
      const cards = all(cfg, 'backing').filter((b) => (attr(b, 'type') ?? '').startsWith('VirtualEthernetCard'));
      expect(cards.length, label).toBe(vm.nics.length);
    }
    expect(vms.length - blank).toBeGreaterThan(70);
  }, 300_000);
});
