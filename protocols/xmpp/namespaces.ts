/**
 * XML namespaces, node names and identities of the Intercloud control plane.
 *
 * Standard namespaces are those of the XEPs; our own live under one versioned URN
 * prefix, `urn:intercloud:…:0`. A breaking change to any payload bumps the trailing
 * version of its namespace (and the caps verification string changes with it).
 */

/** Namespaces defined by RFCs and XEPs. */
export const NS = {
  /** RFC 6120 §8.3.3 stanza error conditions. */
  STANZAS: 'urn:ietf:params:xml:ns:xmpp-stanzas',
  /** XEP-0030 Service Discovery. */
  DISCO_INFO: 'http://jabber.org/protocol/disco#info',
  DISCO_ITEMS: 'http://jabber.org/protocol/disco#items',
  /** XEP-0115 Entity Capabilities. */
  CAPS: 'http://jabber.org/protocol/caps',
  /** XEP-0004 Data Forms. */
  DATA_FORMS: 'jabber:x:data',
  /** XEP-0060 Publish-Subscribe. */
  PUBSUB: 'http://jabber.org/protocol/pubsub',
  PUBSUB_EVENT: 'http://jabber.org/protocol/pubsub#event',
  PUBSUB_OWNER: 'http://jabber.org/protocol/pubsub#owner',
  PUBSUB_ERRORS: 'http://jabber.org/protocol/pubsub#errors',
  /** XEP-0199 XMPP Ping. */
  PING: 'urn:xmpp:ping',
  /** XEP-0202 Entity Time. */
  TIME: 'urn:xmpp:time',
} as const;

/** Namespaces of our own, all under `urn:intercloud:`, version 0. */
export const ICNS = {
  /** Signed catalog entries published to the directory node. */
  CATALOG: 'urn:intercloud:catalog:0',
  /** Offer / accept / reject / cancel / progress. */
  NEGOTIATION: 'urn:intercloud:negotiation:0',
  /** The detached signature element carried by signed payloads. */
  SIGNATURE: 'urn:intercloud:signature:0',
} as const;

/**
 * disco#info features a gateway may advertise (XEP-0030 §3.1). Capability names in
 * the catalog (`vm-hosting` …) map one to one to these features.
 */
export const FEATURES = {
  NEGOTIATION: ICNS.NEGOTIATION,
  CATALOG: ICNS.CATALOG,
  VM_HOSTING: 'urn:intercloud:vm-hosting:0',
  STORAGE_FEDERATION: 'urn:intercloud:storage-federation:0',
  TRANSFER_AMQP: 'urn:intercloud:transfer:amqp:0',
  /** Prefix: `urn:intercloud:format:0#ovf`, `…#qcow2`. */
  FORMAT_PREFIX: 'urn:intercloud:format:0#',
  /** Prefix: `urn:intercloud:hypervisor:0#kvm`, `…#vmware`. */
  HYPERVISOR_PREFIX: 'urn:intercloud:hypervisor:0#',
} as const;

/** The capabilities a catalog entry and `intercloud peers --capability` speak of. */
export const CAPABILITIES = ['vm-hosting', 'storage-federation', 'transfer-amqp'] as const;
/** One of {@link CAPABILITIES}. */
export type Capability = (typeof CAPABILITIES)[number];

/** The disco#info feature of each capability. */
export const CAPABILITY_FEATURE: Readonly<Record<Capability, string>> = {
  'vm-hosting': FEATURES.VM_HOSTING,
  'storage-federation': FEATURES.STORAGE_FEDERATION,
  'transfer-amqp': FEATURES.TRANSFER_AMQP,
};

/**
 * Identities (XEP-0030 §3.1, categories from the XMPP registrar). The names are those the
 * TU Berlin Intercloud implementation gave its gateway and root components.
 */
export const IDENTITIES = {
  GATEWAY: { category: 'client', type: 'bot', name: 'Intercloud Gateway' },
  ROOT: { category: 'pubsub', type: 'service', name: 'Intercloud Root' },
} as const;

/** XEP-0115 §4 `node` attribute: the software that produced the caps. */
export const CAPS_NODE = 'urn:intercloud:gateway:0';

/** The PubSub node (XEP-0060) on the Root holding one catalog item per cloud (item id = cloud id). */
export const CATALOG_NODE = 'urn:intercloud:catalog:0';

/** The resource every gateway binds, so a peer's full JID is `<cloud-id>@<domain>/gateway`. */
export const GATEWAY_RESOURCE = 'gateway';
