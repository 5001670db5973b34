/**
 * Hardened XML for VM descriptors: a guard against hostile input (size, encoding, DTD/entities,
 * depth, junk after the root), a namespace-resolved element tree on top of fast-xml-parser, and a
 * small escaping writer. Pure: text in, values out.
 */
export { XML_ERRORS, locatedError, type XmlErrorCode, type XmlLocation } from './errors.js';
export { DEFAULT_MAX_BYTES, DEFAULT_MAX_DEPTH, decodeDescriptor, guardXml, type GuardResult, type XmlLimits } from './guard.js';
export { attr, childNamed, childText, childrenNamed, parseXml, type XmlAttribute, type XmlElement } from './tree.js';
export { el, escapeAttr, escapeText, renderXml, type XmlNode } from './writer.js';
