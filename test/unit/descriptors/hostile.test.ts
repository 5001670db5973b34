/**
 * Hostile descriptors: each is refused with a coded error, in bounded time and memory.
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { afterAll, describe, expect, it } from 'vitest';
import { readDescriptor, readDescriptorFile } from '../../../protocols/convert/index.js';
import { readLibvirtDomain } from '../../../protocols/libvirt-xml/index.js';
import { readOvf } from '../../../protocols/ovf/index.js';
import { decodeDescriptor, parseXml } from '../../../protocols/xml/index.js';
import { IntercloudError } from '../../../protocols/errors/index.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(IntercloudError);
    return (e as IntercloudError).code;
  }
  return undefined;
}

const ENV = 'xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"';

describe('hostile descriptors', () => {
  let dir: string | undefined;
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('refuses an external entity (XXE) before any entity is resolved', () => {
    const xxe = `<?xml version="1.0"?>\n<!DOCTYPE Envelope [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n<Envelope ${ENV}><VirtualSystem ovf:id="a"><Name>&xxe;</Name></VirtualSystem></Envelope>`;
    let err: IntercloudError | undefined;
    try {
      readOvf(xxe, { source: 'xxe.ovf' });
    } catch (e) {
      err = e as IntercloudError;
    }
    expect(err?.code).toBe('OVF_XML_DOCTYPE');
    expect(err?.details['line']).toBe(2);
    expect(err?.message).not.toContain('root:');
  });

  it('refuses entity expansion (billion laughs) quickly', () => {
    const lol = ['<!ENTITY lol0 "lol">', ...Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i};`.repeat(10)}">`)].join('');
    const doc = `<?xml version="1.0"?><!DOCTYPE domain [${lol}]><domain type="kvm"><name>&lol9;</name></domain>`;
    const t0 = performance.now();
    expect(codeOf(() => readLibvirtDomain(doc, { source: 'laughs.xml' }))).toBe('OVF_XML_DOCTYPE');
    expect(performance.now() - t0).toBeLessThan(100);
  });

  it('refuses an external DTD', () => {
    const doc = `<?xml version="1.0"?>\n<!DOCTYPE domain SYSTEM "http://attacker.invalid/x.dtd">\n<domain type="kvm"><name>a</name><memory>1</memory></domain>`;
    expect(codeOf(() => readLibvirtDomain(doc, { source: 'dtd.xml' }))).toBe('OVF_XML_DOCTYPE');
  });

  it('refuses an undeclared entity reference without a DTD', () => {
    expect(codeOf(() => parseXml('<a>&ext;</a>', 'ent.xml'))).toBe('OVF_XML_MALFORMED');
  });

  it('refuses a 200 MB descriptor by size, without reading it', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ic-desc-'));
    const file = join(dir, 'huge.ovf');
    const out = createWriteStream(file);
    const item = Buffer.from('<Item><rasd:ResourceType>1</rasd:ResourceType></Item>\n'.repeat(20_000));
    out.write(`<Envelope ${ENV}>`);
    for (let written = 0; written < 200 * 1024 * 1024; written += item.length) {
      if (!out.write(item)) await once(out, 'drain');
    }
    out.end('</Envelope>');
    await once(out, 'finish');
    const heap0 = process.memoryUsage().rss;
    const t0 = performance.now();
    await expect(readDescriptorFile(file)).rejects.toMatchObject({ code: 'OVF_XML_TOO_LARGE' });
    expect(performance.now() - t0).toBeLessThan(500);
    expect(process.memoryUsage().rss - heap0).toBeLessThan(32 * 1024 * 1024);
  }, 60_000);

  it('refuses descriptor text over the cap in the pure codec too', () => {
    const big = `<Envelope ${ENV}>${' '.repeat(2048)}</Envelope>`;
    expect(codeOf(() => readOvf(big, { source: 'big.ovf', limits: { maxBytes: 1024 } }))).toBe('OVF_XML_TOO_LARGE');
  });

  it('refuses deep nesting at the depth limit, in linear time', () => {
    const depth = 100_000;
    const doc = '<a>'.repeat(depth) + '</a>'.repeat(depth);
    const t0 = performance.now();
    let err: IntercloudError | undefined;
    try {
      parseXml(doc, 'deep.xml');
    } catch (e) {
      err = e as IntercloudError;
    }
    expect(err?.code).toBe('OVF_XML_TOO_DEEP');
    expect(err?.details['line']).toBe(1);
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  it('refuses binary garbage and bytes before the declaration', () => {
    const garbage = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256));
    expect(codeOf(() => decodeDescriptor(garbage, 'garbage.ovf'))).toBe('OVF_XML_ENCODING');
    const nul = `\u0000\u0001<?xml version="1.0"?><Envelope ${ENV}/>`;
    expect(codeOf(() => readOvf(nul, { source: 'nul.ovf' }))).toBe('OVF_XML_ENCODING');
    expect(codeOf(() => readDescriptor('junk<domain/>', { source: 'junk.xml' }))).toBe('OVF_XML_MALFORMED');
  });

  it('refuses wrong namespaces', () => {
    expect(codeOf(() => readOvf('<Envelope xmlns="http://example.invalid/ovf"><VirtualSystem id="a"/></Envelope>', { source: 'ns.ovf' }))).toBe('OVF_NAMESPACE');
    expect(codeOf(() => readOvf('<Envelope><VirtualSystem/></Envelope>', { source: 'nons.ovf' }))).toBe('OVF_NAMESPACE');
    expect(codeOf(() => readLibvirtDomain('<domain xmlns="http://example.invalid/" type="kvm"><name>a</name><memory>1</memory></domain>', { source: 'ns.xml' }))).toBe('OVF_LIBVIRT_INVALID');
    expect(codeOf(() => readOvf(`<ovf:Envelope xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"><x:VirtualSystem/></ovf:Envelope>`, { source: 'prefix.ovf' }))).toBe('OVF_XML_UNBOUND_PREFIX');
  });
});

describe('well-formedness in the guard', () => {
  it('names the line of a mismatched end tag, a repeated attribute and a malformed start tag', () => {
    const at = (doc: string) => {
      try {
        parseXml(doc, 'wf.xml');
      } catch (e) {
        return [(e as IntercloudError).code, (e as IntercloudError).details['line']];
      }
      return undefined;
    };
    expect(at('<a>\n<b>\n</a>')).toEqual(['OVF_XML_MALFORMED', 3]);
    expect(at('<a>\n<b x="1" x="2"/></a>')).toEqual(['OVF_XML_MALFORMED', 2]);
    expect(at('<a>\n\n<b x=1/></a>')).toEqual(['OVF_XML_MALFORMED', 3]);
    expect(at('<a><b/></a>')).toBeUndefined();
  });
});
