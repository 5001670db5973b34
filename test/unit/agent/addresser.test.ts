import { describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../../../agent/config/index.js';
import { createAddresser, dnsAddresser, lispAddresser, type Addresser, type AddresserFactories, type DnsUpdates } from '../../../agent/daemon/addressing-ports.js';
import { dnsError } from '../../../protocols/dns/index.js';

const base = `
cloud: { id: cloud-b }
identity: { root: root.pem, cert: b.pem, key: b.key }
xmpp: { service: "xmpp://127.0.0.1:15222", domain: intercloud.test, pubsub: pubsub.intercloud.test }
amqp: { url: "amqps://127.0.0.1:25671/intercloud" }
hypervisor: { kind: fake }
state: { dir: /tmp/x }
api: { socket: /tmp/x.sock }
`;
const LISP = 'lisp: { mapServer: "127.0.0.1:14342", keyId: 2, keyFile: /dev/null, rlocs: [198.51.100.1] }';
const DNS = 'dns: { server: "127.0.0.1:15353", zone: Vms.Intercloud.Test., tsigName: intercloud-update, tsigSecret: "c2VjcmV0", locators: [198.51.100.1, "2001:db8:b::1"], ttl: 30 }';
const addressingOf = (...kinds: string[]) =>
  parseConfig(base + (kinds.length ? `addressing:\n${kinds.map((k) => `  ${k}`).join('\n')}\n` : ''), '/etc/intercloud/agent.yaml').addressing;

/** Factories that record which kind was built and every call made on it. */
function recordingFactories() {
  const calls: string[] = [];
  const part = (kind: string): Addresser => ({
    kinds: [kind],
    register: async (vm) => { calls.push(`${kind}:register:${vm.name}:${vm.addresses.join(',')}`); },
    withdraw: async (vm) => { calls.push(`${kind}:withdraw:${vm.name}:${vm.addresses.join(',')}`); },
    held: async (vm) => {
      calls.push(`${kind}:held:${vm.name}`);
      return kind === 'lisp' ? { addresses: vm.addresses.slice(0, 1), name: false } : { addresses: [], name: true };
    },
    verify: async () => { calls.push(`${kind}:verify`); return kind === 'dns' ? 'unreachable' : 'ok'; },
    close: async () => { calls.push(`${kind}:close`); },
  });
  const built: Record<string, unknown> = {};
  const make: AddresserFactories = {
    lisp: async (c) => { built['lisp'] = c; return part('lisp'); },
    dns: (c) => { built['dns'] = c; return part('dns'); },
  };
  return { calls, built, make };
}

const VM = { name: 'web1', addresses: ['10.77.1.5'] };
/** The lisp site's identity: these tests never sign. */
const SITE = { cloudId: 'cloud-b', signer: {} as never };
const signal = new AbortController().signal;

describe('the addresser the daemon builds from the config', () => {
  it('is the dns one for a cloud configured with dns: the sequence calls reach dns only', async () => {
    const { calls, built, make } = recordingFactories();
    const a = await createAddresser(addressingOf(DNS), SITE, make);
    expect(a.kinds).toEqual(['dns']);
    expect(built['lisp']).toBeUndefined();
    expect(built['dns']).toMatchObject({ zone: 'Vms.Intercloud.Test.', locators: ['198.51.100.1', '2001:db8:b::1'], ttl: 30 });
    await a.register(VM, signal);
    await a.withdraw(VM, signal);
    await a.close();
    expect(calls).toEqual(['dns:register:web1:10.77.1.5', 'dns:withdraw:web1:10.77.1.5', 'dns:close']);
  });

  it('is the lisp one for a cloud configured with lisp', async () => {
    const { calls, built, make } = recordingFactories();
    const a = await createAddresser(addressingOf(LISP), SITE, make);
    expect(a.kinds).toEqual(['lisp']);
    expect(built['dns']).toBeUndefined();
    await a.register(VM, signal);
    expect(calls).toEqual(['lisp:register:web1:10.77.1.5']);
  });

  it('updates both, lisp first, when both are configured', async () => {
    const { calls, make } = recordingFactories();
    const a = await createAddresser(addressingOf(LISP, DNS), SITE, make);
    expect(a.kinds).toEqual(['lisp', 'dns']);
    expect(await a.verify(signal)).toBe('unreachable');
    calls.length = 0;
    await a.register(VM, signal);
    await a.withdraw(VM, signal);
    await a.close();
    expect(calls).toEqual([
      'lisp:register:web1:10.77.1.5', 'dns:register:web1:10.77.1.5', 'lisp:withdraw:web1:10.77.1.5', 'dns:withdraw:web1:10.77.1.5',
      'lisp:close', 'dns:close',
    ]);
  });

  it('tells what either part holds when both are configured', async () => {
    const { calls, make } = recordingFactories();
    const a = await createAddresser(addressingOf(LISP, DNS), SITE, make);
    expect(await a.held({ name: 'web1', addresses: ['10.77.1.5', '10.77.1.6'] }, signal)).toEqual({ addresses: ['10.77.1.5'], name: true });
    expect(calls).toEqual(['lisp:held:web1', 'dns:held:web1']);
  });

  it('does nothing when no addressing is configured', async () => {
    const { calls, make } = recordingFactories();
    const a = await createAddresser(addressingOf(), SITE, make);
    expect(a.kinds).toEqual([]);
    await a.register(VM, signal);
    await a.withdraw(VM, signal);
    expect(await a.held(VM, signal)).toEqual({ addresses: [], name: false });
    expect(calls).toEqual([]);
  });
});

describe('the dns addresser', () => {
  const config = addressingOf(DNS).dns!;
  const fakeUpdates = () => {
    const updates = { add: vi.fn<DnsUpdates['add']>(async () => ({ rcode: 'NOERROR' as const, serverTime: 0 })), delete: vi.fn<DnsUpdates['delete']>(async () => ({ rcode: 'NOERROR' as const, serverTime: 0 })) };
    return updates;
  };

  it('adds this cloud\'s locators to <vm>.<zone> on register, signed with the configured key', async () => {
    const updates = fakeUpdates();
    await dnsAddresser(config, updates).register({ name: 'web1', addresses: ['10.77.1.5'] }, signal);
    expect(updates.delete).not.toHaveBeenCalled();
    expect(updates.add).toHaveBeenCalledExactlyOnceWith('web1.vms.intercloud.test', ['198.51.100.1', '2001:db8:b::1'], 30, {
      server: { host: '127.0.0.1', port: 15353 }, zone: 'vms.intercloud.test', signal,
      key: { name: 'intercloud-update', secret: 'c2VjcmV0', algorithm: 'hmac-sha256' },
    });
  });

  it('deletes only this cloud\'s locators from the name on withdraw (another site\'s records stay)', async () => {
    const updates = fakeUpdates();
    await dnsAddresser(config, updates).withdraw({ name: 'web1', addresses: [] }, signal);
    expect(updates.add).not.toHaveBeenCalled();
    expect(updates.delete).toHaveBeenCalledExactlyOnceWith('web1.vms.intercloud.test', ['198.51.100.1', '2001:db8:b::1'], expect.objectContaining({ zone: 'vms.intercloud.test' }));
  });

  it('refuses a vm name that is not a host label, before sending anything', async () => {
    const updates = fakeUpdates();
    const a = dnsAddresser(config, updates);
    for (const name of ['web_1', 'a.b', '-web', 'x'.repeat(64)]) {
      await expect(a.register({ name, addresses: [] }, signal)).rejects.toMatchObject({ code: 'DNS_CONFIG', retryable: false, message: expect.stringMatching(/host label.*letters, digits and dashes/) });
    }
    expect(updates.add).not.toHaveBeenCalled();
  });

  it('refuses a vm name with capitals (no folding onto another vm\'s name), in held and register, before sending anything', async () => {
    const updates = fakeUpdates();
    const a = dnsAddresser(config, updates);
    await a.register({ name: 'web', addresses: [] }, signal);
    updates.add.mockClear();
    for (const name of ['WEB', 'Web', 'wEb1']) {
      const refused = { code: 'DNS_CONFIG', retryable: false, message: expect.stringMatching(/lowercase dns host label/) };
      await expect(a.held({ name, addresses: [] }, signal)).rejects.toMatchObject(refused);
      await expect(a.register({ name, addresses: [] }, signal)).rejects.toMatchObject(refused);
      await expect(a.withdraw({ name, addresses: [] }, signal)).rejects.toMatchObject(refused);
    }
    expect(updates.add).not.toHaveBeenCalled();
    expect(updates.delete).not.toHaveBeenCalled();
  });

  it('holds the names it registered until it withdraws them, and not those whose update failed', async () => {
    const updates = fakeUpdates();
    const a = dnsAddresser(config, updates);
    const web = { name: 'web', addresses: ['10.77.1.5'] };
    expect(await a.held(web, signal)).toEqual({ addresses: [], name: false });
    await a.register(web, signal);
    expect(await a.held(web, signal)).toEqual({ addresses: [], name: true });
    expect(await a.held({ name: 'web2', addresses: [] }, signal)).toEqual({ addresses: [], name: false });
    updates.add.mockRejectedValueOnce(dnsError('DNS_NO_ANSWER', 'no answer', { retryable: true }));
    await expect(a.register({ name: 'web2', addresses: [] }, signal)).rejects.toMatchObject({ code: 'DNS_NO_ANSWER' });
    expect(await a.held({ name: 'web2', addresses: [] }, signal)).toEqual({ addresses: [], name: false });
    updates.delete.mockRejectedValueOnce(dnsError('DNS_NO_ANSWER', 'no answer', { retryable: true }));
    await expect(a.withdraw(web, signal)).rejects.toMatchObject({ code: 'DNS_NO_ANSWER' });
    expect(await a.held(web, signal)).toEqual({ addresses: [], name: true });
    await a.withdraw(web, signal);
    expect(await a.held(web, signal)).toEqual({ addresses: [], name: false });
  });

  it('verifies the key and zone with a signed update of the zone that changes nothing', async () => {
    const updates = fakeUpdates();
    expect(await dnsAddresser(config, updates).verify(signal)).toBe('ok');
    expect(updates.add).toHaveBeenCalledExactlyOnceWith('vms.intercloud.test', [], 30, expect.objectContaining({ zone: 'vms.intercloud.test', signal }));
    expect(updates.delete).not.toHaveBeenCalled();
  });

  it('passes the update\'s coded error on, retryable as it was', async () => {
    const updates = fakeUpdates();
    updates.add.mockRejectedValueOnce(dnsError('DNS_NO_ANSWER', 'no answer', { retryable: true }));
    await expect(dnsAddresser(config, updates).register(VM, signal)).rejects.toMatchObject({ code: 'DNS_NO_ANSWER', retryable: true });
  });
});

describe('the lisp addresser', () => {
  it('maps the vm\'s EIDs, and sends nothing for a vm without addresses', async () => {
    const registrar = {
      register: vi.fn(async () => ({}) as never), withdraw: vi.fn(async () => ({}) as never),
      presentHandOver: vi.fn(async () => undefined), registered: vi.fn(() => []), close: vi.fn(async () => undefined),
    };
    const a = lispAddresser(registrar, SITE);
    await a.register({ name: 'web1', addresses: [] }, signal);
    await a.register(VM, signal);
    await a.withdraw(VM, signal);
    expect(registrar.register).toHaveBeenCalledExactlyOnceWith(['10.77.1.5'], signal);
    expect(registrar.withdraw).toHaveBeenCalledExactlyOnceWith(['10.77.1.5'], signal);
    expect(registrar.presentHandOver).not.toHaveBeenCalled();
  });

  it('presents the holder\'s hand-over to the map server before it registers the EIDs', async () => {
    const order: string[] = [];
    const registrar = {
      register: vi.fn(async () => { order.push('register'); return {} as never; }), withdraw: vi.fn(async () => ({}) as never),
      presentHandOver: vi.fn(async (h: string) => { order.push(`present:${h}`); }), registered: vi.fn(() => []), close: vi.fn(async () => undefined),
    };
    await lispAddresser(registrar, SITE).register(VM, signal, '{"hand-over":1}');
    expect(order).toEqual(['present:{"hand-over":1}', 'register']);
  });

  it('holds the EIDs its registrar keeps registered, also those a listed prefix overlaps; never a name', async () => {
    const registrar = {
      register: vi.fn(async () => ({}) as never), withdraw: vi.fn(async () => ({}) as never),
      presentHandOver: vi.fn(async () => undefined), close: vi.fn(async () => undefined),
      registered: vi.fn(() => ['10.77.1.5/32', '2001:db8:77::5/128']),
    };
    const a = lispAddresser(registrar, SITE);
    expect(await a.held({ name: 'web1', addresses: ['10.77.1.5', '10.77.1.6', '10.77.2.0/24', '2001:db8:77::5'] }, signal))
      .toEqual({ addresses: ['10.77.1.5', '2001:db8:77::5'], name: false });
    expect(await a.held({ name: 'x', addresses: ['10.77.1.0/24'] }, signal)).toEqual({ addresses: ['10.77.1.0/24'], name: false });
    expect(await a.held({ name: 'web1', addresses: [] }, signal)).toEqual({ addresses: [], name: false });
    expect(registrar.register).not.toHaveBeenCalled();
  });
});
