/**
 * Descriptor detection and conversion between OVF, libvirt domain XML and virt-image, each step's
 * report carried into the next so one report lists every loss of the whole conversion. Pure.
 */
import { IntercloudError, defineErrorCodes } from '../errors/index.js';
import { readLibvirtDomain, writeLibvirtDomain, type WriteLibvirtOptions } from '../libvirt-xml/index.js';
import { readOvf, writeOvf, type OvfPackage, type WriteOvfOptions } from '../ovf/index.js';
import { readVirtImage } from '../virt-image/index.js';
import type { ConversionReport, VirtualMachine, WithReport } from '../vm/index.js';
import type { XmlLimits } from '../xml/index.js';

/** Error codes of conversion. */
export const CONVERT_ERRORS = defineErrorCodes('ovf', {
  OVF_UNKNOWN_FORMAT: { doc: 'the descriptor is neither an ovf envelope, a libvirt domain nor a virt-image', retryable: false },
});

/** Descriptor formats. */
export type DescriptorFormat = 'ovf' | 'libvirt' | 'virt-image';

/**
 * Guesses the format from the root element name (the first start tag that is not a comment,
 * declaration or PI). The chosen reader then validates everything.
 */
export function detectFormat(text: string, source: string): DescriptorFormat {
  const m = /<([A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)[\s/>]/.exec(text.replace(/<!--[\s\S]*?-->|<\?[\s\S]*?\?>/g, ''));
  switch (m?.[2]) {
    case 'Envelope':
      return 'ovf';
    case 'domain':
    case 'node':
      return 'libvirt';
    case 'image':
      return 'virt-image';
    default:
      throw new IntercloudError('OVF_UNKNOWN_FORMAT', `'${source}': root element '${m?.[2] ?? ''}' is not an ovf envelope, libvirt domain or virt-image`, { details: { source } });
  }
}

/** Options of {@link readDescriptor}. */
export interface ReadDescriptorOptions {
  readonly source: string;
  readonly format?: DescriptorFormat;
  readonly limits?: XmlLimits;
  /** OVF deployment option. */
  readonly configuration?: string;
  /** virt-image: name when the image has none; boot descriptor. */
  readonly name?: string;
  readonly boot?: number | string;
}

/** A read descriptor: its VMs, and for OVF the whole package. */
export interface ReadDescriptor {
  readonly format: DescriptorFormat;
  readonly vms: readonly VirtualMachine[];
  readonly ovf?: OvfPackage;
}

/** Reads any supported descriptor into VM models. */
export function readDescriptor(text: string, options: ReadDescriptorOptions): WithReport<ReadDescriptor> {
  const format = options.format ?? detectFormat(text, options.source);
  const base = { source: options.source, ...(options.limits ? { limits: options.limits } : {}) };
  if (format === 'ovf') {
    const r = readOvf(text, { ...base, ...(options.configuration ? { configuration: options.configuration } : {}) });
    return { value: { format, vms: r.value.systems, ovf: r.value }, report: r.report };
  }
  if (format === 'libvirt') {
    const r = readLibvirtDomain(text, base);
    return { value: { format, vms: [r.value] }, report: r.report };
  }
  const r = readVirtImage(text, { ...base, ...(options.name ? { name: options.name } : {}), ...(options.boot !== undefined ? { boot: options.boot } : {}) });
  return { value: { format, vms: [r.value] }, report: r.report };
}

/** Options of {@link convertDescriptor}. */
export interface ConvertOptions extends ReadDescriptorOptions {
  readonly to: 'libvirt' | 'ovf';
  readonly libvirt?: WriteLibvirtOptions;
  readonly ovf?: WriteOvfOptions;
}

/**
 * Converts a descriptor: to libvirt, one domain document per VM; to OVF, one envelope. The report
 * holds the reader's and the writer's entries.
 */
export function convertDescriptor(text: string, options: ConvertOptions): WithReport<string[]> {
  const read = readDescriptor(text, options);
  const from = { ...read.report, to: options.to };
  if (options.to === 'ovf') {
    const w = writeOvf(read.value.vms, { ...options.ovf, report: from });
    return { value: [w.value], report: w.report };
  }
  const docs: string[] = [];
  let report: ConversionReport = from;
  for (const vm of read.value.vms) {
    const w = writeLibvirtDomain(vm, { ...options.libvirt, report });
    docs.push(w.value);
    report = w.report;
  }
  return { value: docs, report };
}
