/**
 * Issue 12, finding 3: the development stack's secrets. An unprivileged local user (`nobody`) reads
 * services.json (tests share it) and must find no secret in it, and cannot read the files that hold
 * them; a certified cloud (`cloud-c`) cannot log in by password on the AMQPS listener other clouds use.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import amqp from 'amqplib';
import { describe, expect, it } from 'vitest';
import { STATE_DIR, service } from '../../helpers/services.js';

/** Reads `file` as the unprivileged user nobody; undefined when it may not. */
function readAsNobody(file: string): string | undefined {
  const r = spawnSync('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', 'cat', file], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout : undefined;
}

/** Files of the Prosody, RabbitMQ and PKI services that hold a secret (those that exist). */
function secretFiles(): string[] {
  const pki = join(STATE_DIR, 'pki');
  return [
    join(STATE_DIR, 'prosody', 'scram.password'),
    join(STATE_DIR, 'rabbitmq', 'admin.password'),
    join(STATE_DIR, 'rabbitmq', 'cookie'),
    join(STATE_DIR, 'rabbitmq', 'home', '.erlang.cookie'),
    join(STATE_DIR, 'rabbitmq', 'rabbitmq.conf'),
    join(STATE_DIR, 'rabbitmq', 'definitions.json'),
    join(STATE_DIR, 'rabbitmq', 'agent.password'),
    // cloud-b's own broker (issue 13)
    ...['agent.password', 'cookie', join('home', '.erlang.cookie'), 'rabbitmq.conf', 'definitions.json'].map((f) => join(STATE_DIR, 'rabbitmq-cloud-b', f)),
    join(pki, 'ca.json'),
    join(STATE_DIR, 'bind', 'update.key'),
    join(STATE_DIR, 'vcsim', 'password'),
    // each cloud's Swift (issue 14): the S3 secret, also in the proxy's tempauth configuration
    ...['cloud-a', 'cloud-b'].flatMap((c) => ['s3-secret-key', join('etc', 'proxy-server.conf')].map((f) => join(STATE_DIR, 'swift', c, f))),
    ...readdirSync(pki).filter((f) => f.endsWith('.key')).map((f) => join(pki, f)),
  ].filter((f) => existsSync(f));
}

/** Keys whose string values are secrets wherever they appear… */
const SECRET_KEY = /pass(word)?$|secret|cookie|token/i;
/** …unless the key names the file that holds the secret (`secretAccessKeyFile`): its value is a path. */
const SECRET_FILE_KEY = /File$/;

function secretKeys(value: unknown, path: string[] = []): string[] {
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) =>
    typeof v === 'string' && SECRET_KEY.test(k) && !SECRET_FILE_KEY.test(k) ? [[...path, k].join('.')] : secretKeys(v, [...path, k]));
}

/** The values of keys that name a secret's file (`…secret…File`), with their key path. */
function secretFileKeys(value: unknown, path: string[] = []): Array<{ key: string; file: unknown }> {
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) =>
    SECRET_KEY.test(k) && SECRET_FILE_KEY.test(k) ? [{ key: [...path, k].join('.'), file: v }] : secretFileKeys(v, [...path, k]));
}

describe('secrets of the development stack (issue 12, finding 3)', () => {
  it('services.json, readable by nobody, holds no secret of any service', () => {
    const text = readAsNobody(join(STATE_DIR, 'services.json'));
    expect(text, 'tests share services.json: any local user may read it').toBeDefined();
    expect(secretKeys(JSON.parse(text as string))).toEqual([]);
    // a key naming a secret's file holds the path of a file that only root reads
    const named = secretFileKeys(JSON.parse(text as string));
    expect(named.map((n) => n.key)).toEqual(expect.arrayContaining(['swift.cloud-a.secretAccessKeyFile', 'swift.cloud-b.secretAccessKeyFile']));
    for (const { key, file } of named) {
      expect(typeof file === 'string' && file.startsWith('/') && existsSync(file), `${key}: ${String(file)}`).toBe(true);
      expect(readAsNobody(file as string), `${key}: nobody reads ${String(file)}`).toBeUndefined();
    }
    const secrets = secretFiles().filter((f) => /password|cookie|update\.key|secret-key/.test(f)).map((file) => {
      const content = readFileSync(file, 'utf8');
      // a BIND key file: the secret is the base64 in its `secret "…";` line
      return { file, secret: /secret "([^"]+)"/.exec(content)?.[1] ?? content.trim() };
    });
    expect(secrets.map((s) => s.file)).toEqual(expect.arrayContaining([join(STATE_DIR, 'bind', 'update.key'), join(STATE_DIR, 'vcsim', 'password')]));
    for (const { file, secret } of secrets) {
      expect(secret.length).toBeGreaterThan(8);
      expect(text, `services.json carries the secret of '${file}'`).not.toContain(secret);
    }
    for (const name of readdirSync(join(STATE_DIR, 'env')).filter((f) => f.endsWith('.json'))) {
      const env = readAsNobody(join(STATE_DIR, 'env', name));
      if (env !== undefined) expect(secretKeys(JSON.parse(env)), name).toEqual([]);
    }
  });

  it('no server started by the services carries a secret on its command line (every local user reads those)', () => {
    const secrets = secretFiles().filter((f) => /password|update\.key|secret-key/.test(f))
      .map((f) => /secret "([^"]+)"/.exec(readFileSync(f, 'utf8'))?.[1] ?? readFileSync(f, 'utf8').trim());
    const leaks: string[] = [];
    for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      const cmdline = readAsNobody(`/proc/${pid}/cmdline`)?.replaceAll('\0', ' ') ?? '';
      if (secrets.some((s) => cmdline.includes(s))) leaks.push(`pid ${pid}: ${cmdline.split(' ')[0]}`);
    }
    expect(leaks).toEqual([]);
  });

  it('nobody cannot read a file that holds a secret (keys, passwords, cookie, broker config)', () => {
    const files = secretFiles();
    expect(files).toContain(join(STATE_DIR, 'prosody', 'scram.password'));
    expect(files).toEqual(expect.arrayContaining(['cloud-a', 'cloud-b'].map((c) => join(STATE_DIR, 'swift', c, 'etc', 'proxy-server.conf'))));
    expect(files.filter((f) => readAsNobody(f) !== undefined)).toEqual([]);
  });

  it('refuses a password (PLAIN) login on the AMQPS listener, even with a certified client certificate', async () => {
    const env = service('rabbitmq');
    const pki = service('pki');
    const c = pki.clouds['cloud-c'];
    if (!c) throw new Error('no cloud-c identity in services.json');
    // cloud-c found the administrator's password where it was once kept (or guesses one).
    const legacy = join(STATE_DIR, 'rabbitmq', 'admin.password');
    const password = existsSync(legacy) ? readFileSync(legacy, 'utf8').trim() : 'guessed-password';
    const tls = { ca: [readFileSync(env.tls.ca)], servername: env.servername };
    const url = `amqps://${encodeURIComponent('intercloud-admin')}:${encodeURIComponent(password)}@${env.host}:${env.port}/${env.vhost}`;
    // The management user of the broker's own agent (issue 13), with its real password: the
    // AMQPS listener takes no password at all.
    const agentPassword = readFileSync(join(STATE_DIR, 'rabbitmq', 'agent.password'), 'utf8').trim();
    const asAgent = amqp.connect(`amqps://_agent:${encodeURIComponent(agentPassword)}@${env.host}:${env.port}/${env.vhost}`, { ...tls, cert: readFileSync(c.cert), key: readFileSync(c.key) });
    await expect(asAgent.then((conn) => conn.close().then(() => 'logged in'))).rejects.toThrow();
    // with cloud-c's own certificate: the TLS handshake succeeds, PLAIN must not
    const withCert = amqp.connect(url, { ...tls, cert: readFileSync(c.cert), key: readFileSync(c.key) });
    await expect(withCert.then((conn) => conn.close().then(() => 'logged in'))).rejects.toThrow();
    // guest/guest, RabbitMQ's default, neither
    const guest = amqp.connect(`amqps://guest:guest@${env.host}:${env.port}/`, { ...tls, cert: readFileSync(c.cert), key: readFileSync(c.key) });
    await expect(guest.then((conn) => conn.close().then(() => 'logged in'))).rejects.toThrow();
    // without a client certificate the handshake itself fails
    const noCert = amqp.connect(url, tls);
    await expect(noCert.then((conn) => conn.close().then(() => 'logged in'))).rejects.toThrow();
  });
});
