/**
 * The migration's addresser ({@link AddressingPort}), built from the config's `addressing`:
 * the LISP registrar (the VM's EIDs map to this site's RLOCs), a DNS updater (the VM's name
 * points at this site's locators), both, or none. The sequence only sees the port: which
 * mapping system a cloud uses is decided here, once, from its config.
 *
 * DNS re-addressing, as this agent does it: the VM keeps its name `<vm>.<zone>` (and, inside
 * the guest, its MAC and IP: nothing is reconfigured); what changes is where the name points.
 * While the VM runs in a cloud, the name has A/AAAA records for that cloud's `locators` (the
 * addresses at which the cloud reaches its VMs: its ingress or NAT, the DNS counterpart of
 * LISP RLOCs), exactly as the EID's mapping points at that site's RLOCs with LISP. Each site
 * adds and deletes only its own records (RFC 2136 §2.5.1 / §2.5.4), never the whole RRset, so
 * the target's fresh record survives the source's withdraw, and the source's re-registration
 * (a compensation before the pivot) survives the target's.
 */
import { promises as fs } from 'node:fs';
import { addDnsAddresses, deleteDnsAddresses, dnsError, type DnsUpdateOptions } from '../../protocols/dns/index.js';
import { IntercloudError, isIntercloudError } from '../../protocols/errors/index.js';
import { Registrar, hostPrefix, parsePrefix, prefixesOverlap, signEidHandOver, type EidPrefix } from '../../protocols/lisp/index.js';
import type { Signer } from '../../protocols/trust/index.js';
import type { AgentConfig } from '../config/index.js';
import type { AddressedVm, AddressingPort } from '../migration/index.js';

type LispConfig = NonNullable<AgentConfig['addressing']['lisp']>;
type DnsConfig = NonNullable<AgentConfig['addressing']['dns']>;

/** An addresser the daemon owns: the port, which mapping systems it updates, and its teardown. */
export interface Addresser extends AddressingPort {
  /** The mapping systems it updates (`lisp`, `dns`; none: empty), for the log. */
  readonly kinds: readonly string[];
  /**
   * Checks, without changing anything, that the mapping system takes this site's updates (DNS:
   * a signed update with no changes, so a wrong key or zone shows at start, not mid-migration).
   * Throws `CONFIG_INVALID` (with the fix) when it refuses them; a silent server is not an error
   * here (the re-address step retries), it resolves `unreachable` instead.
   */
  verify(signal: AbortSignal): Promise<'ok' | 'unreachable'>;
  /** Releases sockets and timers (registrations are not withdrawn). */
  close(): Promise<void>;
}

/** This cloud as a LISP site: it signs the hand-over of the EIDs it holds with its own certificate. */
export interface LispSite {
  cloudId: string;
  signer: Signer;
}

/** How each kind of addresser is made; tests replace them. */
export interface AddresserFactories {
  lisp(config: LispConfig, site: LispSite): Promise<Addresser>;
  dns(config: DnsConfig): Addresser;
}

/** The DNS updates a {@link dnsAddresser} sends (`protocols/dns`); tests replace them. */
export interface DnsUpdates {
  add: typeof addDnsAddresses;
  delete: typeof deleteDnsAddresses;
}

/** An RFC 1123 host label: what a VM's name must be to be published as `<name>.<zone>`. */
const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * The addresser of a cloud whose addressing is DNS: `register` adds this cloud's locators to
 * the A/AAAA records of `<vm>.<zone>`, `withdraw` deletes them (others' records stay), each an
 * RFC 2136 update signed with the config's TSIG key. The VM's EIDs play no part. A VM name
 * that is not a lowercase host label is refused (`DNS_CONFIG`) before anything is sent: VM
 * names are case-sensitive, DNS names are not (RFC 4343), so folding `WEB` onto `web` would let
 * one VM's withdraw delete another's record.
 *
 * `held` answers from the names this addresser registered and has not withdrawn since, kept in
 * memory: the site's own record of its own updates, no query (the zone's A/AAAA records say
 * nothing of which site added a locator another site shares). After a restart it is empty; a
 * name of a VM that runs here is then still refused by the target's name-clash check, since a
 * name is published exactly as the VM is named.
 */
export function dnsAddresser(config: DnsConfig, updates: DnsUpdates = { add: addDnsAddresses, delete: deleteDnsAddresses }): Addresser {
  const zone = config.zone.replace(/\.$/, '').toLowerCase();
  const nameOf = (vm: AddressedVm): string => {
    if (!LABEL.test(vm.name)) {
      throw dnsError('DNS_CONFIG', `vm name '${vm.name}' is not a lowercase dns host label, so it has no name of its own in zone '${zone}': `
        + 'name the vm with lowercase letters, digits and dashes (at most 63), or use lisp addressing', { details: { vm: vm.name, zone } });
    }
    return `${vm.name}.${zone}`;
  };
  /** The names this site registered and has not withdrawn since. */
  const mine = new Set<string>();
  const options = (signal: AbortSignal): DnsUpdateOptions => ({
    server: config.server, zone, signal,
    key: { name: config.tsigName, secret: config.tsigSecret, algorithm: config.tsigAlgorithm },
  });
  return {
    kinds: ['dns'],
    async register(vm, signal) {
      const name = nameOf(vm);
      await updates.add(name, config.locators, config.ttl, options(signal));
      mine.add(name);
    },
    async withdraw(vm, signal) {
      const name = nameOf(vm);
      await updates.delete(name, config.locators, options(signal));
      mine.delete(name);
    },
    held: async (vm) => ({ addresses: [], name: mine.has(nameOf(vm)) }),
    async verify(signal) {
      // RFC 2136 §3: an update with an empty update section changes nothing, but the server
      // still checks the TSIG (RFC 8945 §5.2) and that it is the zone's primary (§3.1).
      try {
        await updates.add(zone, [], config.ttl, options(signal));
        return 'ok';
      } catch (err) {
        if (isIntercloudError(err, 'DNS_NO_ANSWER')) return 'unreachable';
        const where = `${config.server.host}:${config.server.port}`;
        const fix = isIntercloudError(err, 'DNS_TSIG_REJECTED') || isIntercloudError(err, 'DNS_TSIG_BAD_RESPONSE')
          ? 'check addressing.dns.tsigName, tsigSecret and tsigAlgorithm against the key the zone\'s allow-update names'
          : `check that addressing.dns.server is the primary of zone '${zone}' and that the zone allows updates signed with the key`;
        throw new IntercloudError('CONFIG_INVALID', `addressing.dns: the server '${where}' refuses updates of zone '${zone}': ${fix}`, { cause: err });
      }
    },
    close: async () => undefined,
  };
}

/**
 * The addresser of a cloud whose addressing is LISP: the VM's EIDs, registered at this site's
 * RLOCs. Taking EIDs another site holds needs that site's signed hand-over, presented to the map
 * server first; as the holder, this site signs the hand-over of its own.
 */
export function lispAddresser(
  registrar: Pick<Registrar, 'register' | 'withdraw' | 'presentHandOver' | 'registered' | 'close'>, site: LispSite,
): Addresser {
  return {
    // What the registrar keeps registered (and refreshes) that overlaps the VM's EIDs.
    held: async ({ addresses }) => {
      const mine = registrar.registered().map(parsePrefix);
      return { addresses: addresses.filter((a) => mine.some((m) => prefixesOverlap(m, eidOf(a)))), name: false };
    },
    kinds: ['lisp'],
    async register({ addresses }, signal, handOver) {
      if (!addresses.length) return;
      if (handOver !== undefined) await registrar.presentHandOver(handOver, signal);
      await registrar.register(addresses, signal);
    },
    async withdraw({ addresses }, signal) { if (addresses.length) await registrar.withdraw(addresses, signal); },
    signHandOver: async ({ addresses, to, offerId }) =>
      JSON.stringify(signEidHandOver({ eids: addresses, from: site.cloudId, to, offerId }, site.signer, { now: new Date() })),
    verify: async () => 'ok',
    close: () => registrar.close(),
  };
}

/** An address or prefix as the registrar reads it (a bare address: its host prefix). */
const eidOf = (a: string): EidPrefix => (a.includes('/') ? parsePrefix(a) : hostPrefix(a));

/** Opens the LISP registrar of the config (reads the site key file). */
async function openLispAddresser(lisp: LispConfig, site: LispSite): Promise<Addresser> {
  const key = (await fs.readFile(lisp.keyFile, 'utf8')).trim();
  return lispAddresser(await Registrar.open({ mapServer: lisp.mapServer, keyId: lisp.keyId, algorithm: lisp.algorithm, key, rlocs: lisp.rlocs }), site);
}

const FACTORIES: AddresserFactories = { lisp: openLispAddresser, dns: (c) => dnsAddresser(c) };

/**
 * The addresser the config asks for: LISP, DNS, both (each registration goes to both, in
 * that order), or none (re-addressing does nothing: the cloud keeps no mapping).
 */
export async function createAddresser(
  addressing: AgentConfig['addressing'], site: LispSite, make: AddresserFactories = FACTORIES,
): Promise<Addresser> {
  const parts: Addresser[] = [];
  if (addressing.lisp) parts.push(await make.lisp(addressing.lisp, site));
  if (addressing.dns) parts.push(make.dns(addressing.dns));
  if (parts.length === 1) return parts[0]!;
  return {
    kinds: parts.flatMap((p) => p.kinds),
    async verify(signal) {
      let result: 'ok' | 'unreachable' = 'ok';
      for (const p of parts) if ((await p.verify(signal)) === 'unreachable') result = 'unreachable';
      return result;
    },
    async register(vm, signal, handOver) { for (const p of parts) await p.register(vm, signal, handOver); },
    async withdraw(vm, signal) { for (const p of parts) await p.withdraw(vm, signal); },
    async held(vm, signal) {
      const addresses = new Set<string>();
      let name = false;
      for (const p of parts) {
        const h = await p.held(vm, signal);
        h.addresses.forEach((a) => addresses.add(a));
        name ||= h.name;
      }
      return { addresses: [...addresses], name };
    },
    async signHandOver(req, signal) {
      for (const p of parts) {
        const signed = await p.signHandOver?.(req, signal);
        if (signed !== undefined) return signed;
      }
      return undefined;
    },
    async close() { await Promise.all(parts.map((p) => p.close())); },
  };
}
