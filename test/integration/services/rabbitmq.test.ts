import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import amqp from 'amqplib';
import { beforeAll, describe, expect, it } from 'vitest';
import { service, type AmqpEnv } from '../../helpers/services.js';

describe('rabbitmq (AMQP over TLS, EXTERNAL by certificate CN)', () => {
  let env: AmqpEnv;
  let ca: Buffer;

  beforeAll(() => {
    env = service('rabbitmq');
    ca = readFileSync(env.tls.ca);
  });

  function asCloud(cloud: string): Promise<amqp.ChannelModel> {
    const id = env.users[cloud];
    if (!id) throw new Error(`no rabbitmq user '${cloud}' in services.json`);
    return amqp.connect(env.url, {
      ca: [ca],
      cert: readFileSync(id.cert),
      key: readFileSync(id.key),
      servername: env.servername,
      credentials: amqp.credentials.external(),
    });
  }

  /**
   * A transfer-shaped exchange + exclusive queue the cloud is allowed to use (the definitions only
   * grant names embedding both cloud ids: `xfer.<from>.<to>.<uuid>[.data|.ctl]`).
   */
  async function transferQueue(ch: amqp.Channel, from: string, to: string): Promise<{ exchange: string; queue: string }> {
    const exchange = `xfer.${from}.${to}.${randomUUID()}`;
    const queue = `${exchange}.data`;
    await ch.assertExchange(exchange, 'direct', { durable: false, autoDelete: true });
    await ch.assertQueue(queue, { exclusive: true });
    await ch.bindQueue(queue, exchange, 'data');
    return { exchange, queue };
  }

  it('logs cloud-a in as user "cloud-a" (its CN) on vhost intercloud and round-trips a message', async () => {
    const conn = await asCloud('cloud-a');
    try {
      const ch = await conn.createChannel();
      const { exchange, queue } = await transferQueue(ch, 'cloud-a', 'cloud-b');
      // RabbitMQ checks user_id against the authenticated user: this proves the login name is the CN.
      ch.publish(exchange, 'data', Buffer.from('hello'), { userId: 'cloud-a' });
      const msg = await new Promise<amqp.ConsumeMessage>((resolve) => {
        void ch.consume(queue, (m) => m && resolve(m), { noAck: true });
      });
      expect(msg.content.toString()).toBe('hello');
      expect(msg.properties.userId).toBe('cloud-a');
      await ch.deleteExchange(exchange);
      await ch.close();
    } finally {
      await conn.close();
    }
  });

  it('closes the channel when a message claims another user id (406 PRECONDITION_FAILED)', async () => {
    const conn = await asCloud('cloud-b');
    try {
      const ch = await conn.createChannel();
      const { exchange } = await transferQueue(ch, 'cloud-a', 'cloud-b');
      const closed = new Promise<Error>((resolve) => ch.once('error', resolve));
      ch.publish(exchange, 'data', Buffer.from('x'), { userId: 'cloud-a' });
      const err = (await closed) as Error & { code?: number };
      expect(err.code).toBe(406);
    } finally {
      await conn.close();
    }
  });

  it('refuses a client without a certificate at the TLS handshake (fail_if_no_peer_cert)', async () => {
    const attempt = amqp.connect(env.url, { ca: [ca], servername: env.servername, credentials: amqp.credentials.external() });
    await expect(attempt).rejects.toMatchObject({ code: expect.stringMatching(/^(ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED|ECONNRESET)$/) });
  });

  it('refuses a cloud-a certificate issued by another root (TLS alert unknown CA)', async () => {
    const other = mkdtempSync(join(tmpdir(), 'intercloud-other-root-'));
    try {
      const cli = join(import.meta.dirname, '../../../scripts/intercloud');
      execFileSync(cli, ['ca', 'init', '--dir', other]);
      execFileSync(cli, ['ca', 'issue', '--dir', other, '--cloud', 'cloud-a', '--out', join(other, 'cloud-a')]);
      const attempt = amqp.connect(env.url, {
        ca: [ca],
        cert: readFileSync(join(other, 'cloud-a.pem')),
        key: readFileSync(join(other, 'cloud-a.key')),
        servername: env.servername,
        credentials: amqp.credentials.external(),
      });
      await expect(attempt).rejects.toMatchObject({ code: 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA' });
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it('is managed with rabbitmqctl: it reaches the node; besides the clouds only the local agent\'s management user, with no vhost', () => {
    const vhosts = execFileSync(env.ctl, ['list_vhosts', '--quiet'], { encoding: 'utf8' });
    expect(vhosts.split('\n')).toContain('intercloud');
    const users = execFileSync(env.ctl, ['list_users', '--quiet', '--no-table-headers'], { encoding: 'utf8' })
      .split('\n').filter((l) => l.trim() !== '').map((l) => l.split(/\s+/)[0]!).sort();
    // `_agent` (issue 13): the management API user of the broker's own agent, which grants peers
    // per offer. Not a valid cloud id (no certificate CN maps to it) and no permission on any
    // vhost, so it cannot use AMQP at all; the AMQPS listener takes no password (secrets.test.ts).
    expect(users.filter((u) => u !== '_agent')).toEqual(Object.keys(env.users).sort());
    const perms = execFileSync(env.ctl, ['list_user_permissions', '_agent', '--quiet', '--no-table-headers'], { encoding: 'utf8' });
    expect(perms.trim()).toBe('');
  });
});
