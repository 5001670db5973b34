/**
 * Reading descriptor files with the size cap applied before any byte is read (so a 200 MB
 * "descriptor" costs one stat, not 200 MB of memory). The only I/O of the descriptors codecs.
 */
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import { DEFAULT_MAX_BYTES, decodeDescriptor, locatedError, type XmlLimits } from '../xml/index.js';

/** Reads a descriptor file as text; rejects files over the cap (`OVF_XML_TOO_LARGE`) without reading them. */
export async function readDescriptorFile(path: string, limits: XmlLimits = {}): Promise<string> {
  const max = limits.maxBytes ?? DEFAULT_MAX_BYTES;
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    if (size > max) throw locatedError('OVF_XML_TOO_LARGE', { source: basename(path) }, `size ${size} bytes exceeds the cap of ${max} bytes`);
    const buf = Buffer.alloc(size);
    const { bytesRead } = await fh.read(buf, 0, size, 0);
    return decodeDescriptor(buf.subarray(0, bytesRead), basename(path), limits);
  } finally {
    await fh.close();
  }
}
