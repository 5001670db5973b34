/**
 * `intercloud ovf inspect FILE [--json]` and `intercloud ovf convert --to libvirt|ovf FILE`:
 * read any VM descriptor (OVF, libvirt domain XML, virt-image) and show or convert it, printing
 * the conversion report on stderr (or inside the JSON document).
 * `intercloud ova pack DESCRIPTOR --out X.ova [--sign-cert C --sign-key K]` and
 * `intercloud ova verify X.ova [--root R] [--cloud ID] [--require-signature] [--extract DIR]`.
 */
import { readFile, writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { convertDescriptor, readDescriptor, readDescriptorFile } from '../../../protocols/convert/index.js';
import { basename } from 'node:path';
import type { ConversionReport, VirtualMachine } from '../../../protocols/vm/index.js';
import { IntercloudError, isIntercloudError } from '../../../protocols/errors/index.js';
import { localFileOf, packOva, verifyOva } from '../../../protocols/ova/index.js';
import { readOvf } from '../../../protocols/ovf/index.js';
import { parseCrlsPem } from '../../../protocols/trust/index.js';
import { EXIT, printError, printJson, usageError } from '../output.js';

function gib(n: number): string {
  return n === 0 ? 'unknown' : `${(n / 2 ** 30).toFixed(n % 2 ** 30 === 0 ? 0 : 2)} GiB`;
}

function summary(vm: VirtualMachine): string {
  const lines = [
    `${vm.name}${vm.uuid ? ` (${vm.uuid})` : ''}`,
    `  firmware ${vm.firmware}${vm.secureBoot ? ' +secure-boot' : ''}, ${vm.cpu.count} vcpu${vm.cpu.topology ? ` (${vm.cpu.topology.sockets}x${vm.cpu.topology.cores}x${vm.cpu.topology.threads})` : ''}, memory ${vm.memoryBytes / 2 ** 20} MiB${vm.os?.name ? `, os ${vm.os.name}` : ''}`,
  ];
  vm.disks.forEach((d, i) => lines.push(`  disk ${i}: ${gib(d.capacityBytes)} ${d.format ?? ''} ${d.bus}${d.controllerModel ? `/${d.controllerModel}` : ''} ${d.file?.href ?? d.source ?? '(blank)'}${d.bootOrder ? ` boot ${d.bootOrder}` : ''}`));
  vm.cdroms.forEach((c, i) => lines.push(`  cdrom ${i}: ${c.bus} ${c.file?.href ?? '(empty)'}`));
  vm.nics.forEach((n, i) => lines.push(`  nic ${i}: ${n.mac ?? '(auto mac)'} ${n.model ?? ''} network '${n.network ?? ''}'`));
  return lines.join('\n');
}

function printReport(report: ConversionReport): void {
  for (const e of report.entries) process.stderr.write(`${e.severity}: ${e.path}: ${e.message}\n`);
}

/** Registers `ovf inspect` and `ovf convert`. */
export function registerOvfCommands(program: Command): void {
  const ovf = program.command('ovf').description('VM descriptors: OVF, libvirt domain XML, virt-image');
  ovf
    .command('inspect')
    .description('read a descriptor and show its VMs (and what the model could not hold)')
    .argument('<file>', 'OVF, libvirt domain XML or virt-image file')
    .option('--json', 'print one JSON document: format, vms, report')
    .option('--configuration <id>', 'OVF deployment option to apply')
    .action(async (file: string, opts: { json?: boolean; configuration?: string }) => {
      const text = await readDescriptorFile(file);
      const r = readDescriptor(text, { source: basename(file), name: basename(file).replace(/\.[^.]+$/, ''), ...(opts.configuration ? { configuration: opts.configuration } : {}) });
      if (opts.json) {
        printJson({ format: r.value.format, vms: r.value.vms, report: r.report });
        return;
      }
      process.stdout.write(`${r.value.format}: ${r.value.vms.length} vm(s)\n${r.value.vms.map(summary).join('\n')}\n`);
      printReport(r.report);
    });
  ovf
    .command('convert')
    .description('convert a descriptor; the report of what the target cannot express goes to stderr')
    .argument('<file>', 'OVF, libvirt domain XML or virt-image file')
    .requiredOption('--to <format>', 'libvirt | ovf')
    .option('--out <file>', 'write here instead of stdout (libvirt: one file per VM, suffixed -N when several)')
    .option('--domain-type <type>', 'libvirt <domain type> (kvm, qemu, test)', 'kvm')
    .option('--ovf-version <v>', 'OVF version to write: 1.x or 2.0', '1.x')
    .option('--devices <names>', "OVF device names: 'source' (keep virtio …) or 'vsphere' (map to what vSphere has)", 'source')
    .option('--json', 'print { documents, report } as JSON')
    .action(async (file: string, opts: { to: string; out?: string; domainType: string; ovfVersion: string; devices: string; json?: boolean }) => {
      if (opts.to !== 'libvirt' && opts.to !== 'ovf') {
        throw usageError(`--to must be 'libvirt' or 'ovf', got '${opts.to}'`);
      }
      const text = await readDescriptorFile(file);
      const r = convertDescriptor(text, {
        source: basename(file),
        name: basename(file).replace(/\.[^.]+$/, ''),
        to: opts.to,
        libvirt: { domainType: opts.domainType },
        ovf: { version: opts.ovfVersion === '2.0' ? '2.0' : '1.x', devices: opts.devices === 'vsphere' ? 'vsphere' : 'source' },
      });
      if (opts.json) {
        printJson({ documents: r.value, report: r.report });
        return;
      }
      if (opts.out) {
        const out = opts.out;
        await Promise.all(r.value.map((doc, i) => writeFile(r.value.length === 1 ? out : out.replace(/(\.[^.]+)?$/, `-${i}$1`), doc)));
      } else {
        process.stdout.write(r.value.join('\n'));
      }
      printReport(r.report);
    });
}

/** Registers `ova pack` and `ova verify`. */
export function registerOvaCommands(program: Command): void {
  const ova = program.command('ova').description('OVA packages: tar + SHA-256 manifest + optional signature (DSP0243 §5)');
  ova
    .command('pack')
    .description('pack a descriptor and the files it references (relative to it) into an OVA')
    .argument('<descriptor>', 'the .ovf file')
    .requiredOption('--out <file>', 'the .ova to write')
    .option('--sign-cert <pem>', "the cloud's certificate (chain) to put in the .cert")
    .option('--sign-key <pem>', "the cloud's private key to sign the manifest with")
    .option('--json', 'print what was written as JSON')
    .action(async (descriptor: string, opts: { out: string; signCert?: string; signKey?: string; json?: boolean }) => {
      if ((opts.signCert === undefined) !== (opts.signKey === undefined)) {
        throw usageError('--sign-cert and --sign-key go together');
      }
      const text = await readDescriptorFile(descriptor);
      const pkg = readOvf(text, { source: basename(descriptor) });
      const files = pkg.value.files.map((f) => localFileOf(descriptor, f.href));
      const packed = await packOva({
        out: opts.out,
        descriptor: { name: basename(descriptor).replace(/\.[^.]*$/, '') + '.ovf', text },
        files,
        ...(opts.signCert && opts.signKey ? { signer: { certificatePem: await readFile(opts.signCert, 'utf8'), keyPem: await readFile(opts.signKey, 'utf8') } } : {}),
      });
      if (opts.json) printJson(packed);
      else process.stdout.write(`${opts.out}: ${packed.entries.join(', ')}${packed.signed ? ' (signed)' : ''}\n`);
    });
  ova
    .command('verify')
    .description('verify an OVA: layout, entry names, manifest digests, signature and signer (exit 3 when rejected)')
    .argument('<file>', 'the .ova')
    .option('--root <pem>', 'trust anchors (the Intercloud Root) for the signer certificate')
    .option('--crl <pem>', 'CRLs to check the signer against')
    .option('--cloud <id>', 'the signer must be this cloud')
    .option('--require-signature', 'reject unsigned packages')
    .option('--extract <dir>', 'also extract the files into this directory')
    .option('--json', 'print the verdict as JSON')
    .action(async (file: string, opts: { root?: string; crl?: string; cloud?: string; requireSignature?: boolean; extract?: string; json?: boolean }) => {
      try {
        const v = await verifyOva(file, {
          ...(opts.root ? { rootsPem: await readFile(opts.root, 'utf8') } : {}),
          ...(opts.crl ? { crls: parseCrlsPem(await readFile(opts.crl, 'utf8')) } : {}),
          ...(opts.cloud ? { expectCloudId: opts.cloud } : {}),
          ...(opts.requireSignature ? { requireSignature: true } : {}),
          ...(opts.extract ? { extractTo: opts.extract } : {}),
        });
        // The descriptor itself must read, and every file it references must be in the package.
        const pkg = readOvf(v.descriptor, { source: v.descriptorName });
        const inside = new Set(v.files.map((f) => f.name));
        const missing = pkg.value.files.filter((f) => !inside.has(f.href.replace(/^(\.\/)+/, '')));
        if (missing.length > 0) {
          throw new IntercloudError('OVF_OVA_LAYOUT', `'${basename(file)}': descriptor references '${missing[0]?.href}' which is not in the package`, { details: { entry: missing[0]?.href } });
        }
        if (opts.json) printJson({ verdict: 'good', descriptor: v.descriptorName, files: v.files, signed: v.signed, signer: v.signer, vms: pkg.value.systems.length });
        else process.stdout.write(`good: ${v.descriptorName}, ${v.files.length} file(s), ${v.signed ? `signed${v.signer ? ` by '${v.signer.cloudId ?? v.signer.subject}' (trusted)` : ' (signer not checked: no --root)'}` : 'unsigned'}\n`);
      } catch (err) {
        if (!isIntercloudError(err) || !err.code.startsWith('OVF_')) throw err;
        if (opts.json) printJson({ verdict: 'rejected', error: err.toJSON() });
        else printError(err);
        process.exitCode = EXIT.rejected;
      }
    });
}
