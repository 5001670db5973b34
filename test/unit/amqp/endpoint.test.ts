/**
 * Whose broker (issue 13): the data endpoint an accept names is checked before the source
 * connects anywhere — an amqps URI without credentials, and a broker identity under the
 * accepting cloud's own `<cloud>.<domain>` — and the permission the target grants a peer
 * covers exactly the transfers of one offer.
 */
import { describe, expect, it } from 'vitest';
import { isIntercloudError } from '../../../protocols/errors/index.js';
import { checkTransferEndpoint, grantPattern, transferTopology } from '../../../protocols/amqp/index.js';
import { channelTransferId, newTransferId, transferPrefix } from '../../../agent/replication/index.js';

const codeOf = (f: () => unknown): string | undefined => {
  try { f(); return undefined; } catch (err) { return isIntercloudError(err) ? err.code : String(err); }
};
const D = 'intercloud.test';

describe('checkTransferEndpoint', () => {
  it('takes the accepting cloud\'s broker and names host, port, vhost and identity', () => {
    expect(checkTransferEndpoint({ uri: 'amqps://127.0.0.1:25681/transfers', identity: 'broker.cloud-b.intercloud.test' }, 'cloud-b', D)).toEqual({
      url: 'amqps://127.0.0.1:25681/transfers', host: '127.0.0.1', port: 25681, vhost: 'transfers', identity: 'broker.cloud-b.intercloud.test',
    });
    expect(checkTransferEndpoint({ uri: 'amqps://mq.example/transfers', identity: 'amqp1.broker.cloud-b.intercloud.test' }, 'cloud-b', D).port).toBe(5671);
  });

  it('refuses an identity of another cloud, of the root, or a suffix trick, as XFER_BROKER_IDENTITY', () => {
    for (const identity of [
      'broker.cloud-a.intercloud.test', // a third party's broker
      'cloud-b.intercloud.test', // the gateway's own name, not a name under it
      'intercloud.test', 'localhost', 'broker.xcloud-b.intercloud.test', 'broker.cloud-b.intercloud.test.evil',
    ]) {
      expect(codeOf(() => checkTransferEndpoint({ uri: 'amqps://127.0.0.1:25681/transfers', identity }, 'cloud-b', D)), identity).toBe('XFER_BROKER_IDENTITY');
    }
  });

  it('refuses an accept without an identity', () => {
    expect(codeOf(() => checkTransferEndpoint({ uri: 'amqps://127.0.0.1:25681/transfers' }, 'cloud-b', D))).toBe('XFER_BROKER_IDENTITY');
  });

  it('refuses a plain, credentialed, query-carrying or vhost-less uri as XFER_BROKER_IDENTITY', () => {
    for (const uri of [
      'amqp://127.0.0.1:25681/transfers', 'amqps://user:pw@127.0.0.1:25681/transfers', 'amqps://127.0.0.1:25681/transfers?heartbeat=0',
      'amqps://127.0.0.1:25681/', 'amqps://127.0.0.1:25681/a/b', 'https://127.0.0.1/transfers', 'amqps://127.0.0.1:0/transfers', 'not a uri',
    ]) {
      expect(codeOf(() => checkTransferEndpoint({ uri, identity: 'broker.cloud-b.intercloud.test' }, 'cloud-b', D)), uri).toBe('XFER_BROKER_IDENTITY');
    }
  });
});

describe('grantPattern', () => {
  const ids = ['0b7d1f0e-4b8a-5c2e-9f00-111111111111', '0b7d1f0e-4b8a-5c2e-9f00-222222222222'];
  const re = new RegExp(grantPattern('cloud-a', 'cloud-b', ids));

  it('covers the exchange and both queues of each granted transfer from the peer into this cloud', () => {
    for (const id of ids) {
      const t = transferTopology('cloud-a', 'cloud-b', id);
      for (const name of [t.exchange, t.dataQueue, t.controlQueue]) expect(re.test(name), name).toBe(true);
    }
  });

  it('covers nothing else: another offer\'s transfer, the reverse direction, another peer, the default exchange', () => {
    const other = '0b7d1f0e-4b8a-5c2e-9f00-333333333333';
    for (const name of [
      transferTopology('cloud-a', 'cloud-b', other).dataQueue,
      transferTopology('cloud-b', 'cloud-a', ids[0]!).dataQueue,
      transferTopology('cloud-c', 'cloud-b', ids[0]!).dataQueue,
      transferTopology('cloud-a', 'cloud-c', ids[0]!).exchange,
      `${transferTopology('cloud-a', 'cloud-b', ids[0]!).dataQueue}x`, 'amq.default', '', 'amq.direct',
    ]) expect(re.test(name), name).toBe(false);
  });

  it('matches nothing when no transfer is granted', () => {
    expect(new RegExp(grantPattern('cloud-a', 'cloud-b', [])).test(transferTopology('cloud-a', 'cloud-b', ids[0]!).dataQueue)).toBe(false);
  });

  it('refuses a transfer id that is not a uuid', () => {
    expect(codeOf(() => grantPattern('cloud-a', 'cloud-b', ['.*']))).toBe('XFER_CONFIG');
  });
});

describe('grantPattern with storage subcontracts (transfer prefixes)', () => {
  // A storage subcontract's transfers all start with its prefix (agent/replication's transferPrefix):
  // the request channel and an open-ended series of object transfers.
  const P1 = transferPrefix('sc-1');
  const vm = '0b7d1f0e-4b8a-5c2e-9f00-111111111111';
  const re = new RegExp(grantPattern('cloud-a', 'cloud-b', [vm], [P1]));
  const names = (from: string, to: string, id: string): string[] => {
    const t = transferTopology(from, to, id);
    return [t.exchange, t.dataQueue, t.controlQueue];
  };

  it("covers the subcontract's request channel and any of its transfers, beside the peer's VM offer, in one anchored regex", () => {
    for (const id of [channelTransferId('sc-1'), newTransferId('sc-1'), newTransferId('sc-1'), `${P1}-ffff-ffffffffffff`, vm]) {
      for (const name of names('cloud-a', 'cloud-b', id)) expect(re.test(name), name).toBe(true);
    }
    // Prefixes alone (a peer with only a subcontract) grant the same.
    const only = new RegExp(grantPattern('cloud-a', 'cloud-b', [], [P1]));
    for (const name of names('cloud-a', 'cloud-b', newTransferId('sc-1'))) expect(only.test(name), name).toBe(true);
    expect(only.test(transferTopology('cloud-a', 'cloud-b', vm).dataQueue)).toBe(false);
  });

  it("covers nothing else: another subcontract's, another peer's, the reverse direction, lookalikes, the default exchange", () => {
    const mine = transferTopology('cloud-a', 'cloud-b', channelTransferId('sc-1'));
    for (const name of [
      ...names('cloud-a', 'cloud-b', newTransferId('sc-2')),
      ...names('cloud-a', 'cloud-b', channelTransferId('sc-2')),
      // Another peer's VM offer and another peer's transfers under this very prefix.
      ...names('cloud-c', 'cloud-b', vm),
      ...names('cloud-c', 'cloud-b', newTransferId('sc-1')),
      ...names('cloud-b', 'cloud-a', newTransferId('sc-1')),
      ...names('cloud-a', 'cloud-c', newTransferId('sc-1')),
      // Prefix-extended and truncated lookalikes.
      `xfer.cloud-a.cloud-b.${P1}`, `xfer.cloud-a.cloud-b.${P1}-`, `xfer.cloud-a.cloud-b.${P1}-0000-0000000000000`,
      `xfer.cloud-a.cloud-b.${P1}-0000-00000000000`, `xfer.cloud-a.cloud-b.${P1}0-0000-000000000000`,
      `xfer.cloud-a.cloud-b.${P1}-00000-00000000000`, `xfer.cloud-a.cloud-b.${P1.toUpperCase()}-0000-000000000000`,
      `xfer.cloud-a.cloud-b.${P1}-0000-00000000000g`, `${mine.dataQueue}x`, `${mine.exchange}.other`, `x${mine.exchange}`,
      `${mine.exchange}.data.ctl`, `xfer.cloud-a.cloud-b.${P1}-0000-000000000000|x`,
      '', 'amq.default', 'amq.direct', 'amq.topic', 'xfer.cloud-a.cloud-b', 'other',
    ]) expect(re.test(name), name).toBe(false);
  });

  it('refuses a prefix that is not the fixed-length hex form transferPrefix makes', () => {
    for (const p of ['.*', '', 'sc-1', P1.toUpperCase(), `${P1}-`, `${P1}-0000`, `${P1}|.*`, P1.slice(1), `${P1}0`, channelTransferId('sc-1'), `(${P1})`]) {
      expect(codeOf(() => grantPattern('cloud-a', 'cloud-b', [], [p])), p).toBe('XFER_CONFIG');
    }
  });
});
