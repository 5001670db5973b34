/**
 * `intercloud root map-server …` runs the Intercloud Root's LISP Map-Server/Map-Resolver;
 * `intercloud map lookup EID` asks a Map-Resolver for an EID's RLOCs; `intercloud map
 * register|withdraw EID…` registers or withdraws EIDs by hand (confirmed by Map-Notify).
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { IntercloudError } from '../../../protocols/errors/index.js';
import { parseCertificatesPem, parseCrlsPem, type Certificate, type Crl } from '../../../protocols/trust/index.js';
import {
  LISP_CONTROL_PORT, formatPrefix, lookupEid, registerEid, startMapServer, withdrawEid, type AuthAlgorithm, type RegistrarOptions,
  type SiteConfig,
} from '../../../protocols/lisp/index.js';
import { EXIT, printJson, usageError } from '../output.js';

/** A bad flag (`CLI_USAGE`, exit 2). */
function usage(message: string, cause?: unknown): IntercloudError {
  return usageError(message, cause);
}

/** A bad map server config file (`LISP_CONFIG`, the area's own config code, exit 2). */
function configError(message: string, cause?: unknown): IntercloudError {
  return new IntercloudError('LISP_CONFIG', message, { cause, details: { exit: EXIT.usage } });
}

/** `host:port` (IPv6 as `[::1]:4342`); the port defaults to 4342. */
export function parseHostPort(text: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(text) ?? /^([^:]+)(?::(\d+))?$/.exec(text);
  const port = m?.[2] === undefined ? LISP_CONTROL_PORT : Number(m[2]);
  if (!m?.[1] || !Number.isInteger(port) || port < 0 || port > 65535) throw usage(`'${text}' is not host:port`);
  return { host: m[1], port };
}

const SiteSchema = z.strictObject({
  name: z.string().min(1),
  keyId: z.number().int().min(0).max(255),
  key: z.string().min(1).optional(),
  keyFile: z.string().min(1).optional(),
  allowedPrefixes: z.array(z.string().min(1)).min(1),
});
const MapServerConfigSchema = z.strictObject({
  listen: z.string().default(`127.0.0.1:${LISP_CONTROL_PORT}`),
  registrationTimeoutSeconds: z.number().int().positive().optional(),
  /** How far a Map-Register nonce's time may be from this server's clock (RFC 9301 §5.6 replay protection). */
  nonceWindowSeconds: z.number().int().positive().optional(),
  /** The Intercloud Root that EID hand-overs must be signed under, and its CRL (without it, EIDs move only by withdrawal). */
  trust: z.strictObject({ root: z.string().min(1), crl: z.string().min(1).optional() }).optional(),
  /** Keeps who holds which EID, the sites' last nonces and the hand-overs across restarts. */
  stateFile: z.string().min(1).optional(),
  sites: z.array(SiteSchema).min(1),
});

function readTrust(t: { root: string; crl?: string | undefined }): { roots: Certificate[]; crls?: Crl[] } {
  try {
    const roots = parseCertificatesPem(readFileSync(t.root, 'utf8'));
    return { roots, ...(t.crl === undefined ? {} : { crls: parseCrlsPem(readFileSync(t.crl, 'utf8')) }) };
  } catch (err) {
    throw usage(`cannot read the intercloud root '${t.root}'${t.crl ? ` or its crl '${t.crl}'` : ''} of the map server config`, err);
  }
}

function readKey(site: { name: string; key?: string | undefined; keyFile?: string | undefined }): string {
  if (site.key !== undefined) return site.key;
  if (site.keyFile === undefined) throw usage(`site '${site.name}' needs 'key' or 'keyFile'`);
  try {
    return readFileSync(site.keyFile, 'utf8').trim();
  } catch (err) {
    throw usage(`cannot read the key file '${site.keyFile}' of site '${site.name}'`, err);
  }
}

/** `name:keyId:keyFile:prefix[,prefix…]` from `--site`. */
function parseSiteFlag(text: string): z.infer<typeof SiteSchema> {
  const [name, keyId, keyFile, prefixes] = text.split(':');
  if (!name || !keyId || !keyFile || !prefixes) throw usage(`--site '${text}' is not name:keyId:keyFile:prefix[,prefix…]`);
  return { name, keyId: Number(keyId), keyFile, allowedPrefixes: prefixes.split(',') };
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function algorithmOf(text: string): AuthAlgorithm {
  if (text === 'hmac-sha-1-96' || text === 'hmac-sha-256-128') return text;
  throw usage(`--algorithm '${text}' is not 'hmac-sha-1-96' or 'hmac-sha-256-128'`);
}

interface RegisterFlags {
  mapServer: string;
  keyId: string;
  key?: string;
  keyFile?: string;
  algorithm: string;
  rloc: string[];
  ttl?: string;
  retries: string;
  timeout: string;
  json?: boolean;
}

function registrarOptions(o: RegisterFlags): RegistrarOptions {
  const keyId = Number(o.keyId);
  if (!Number.isInteger(keyId) || keyId < 0 || keyId > 255) throw usage(`--key-id '${o.keyId}' is not 0–255`);
  return {
    mapServer: parseHostPort(o.mapServer), keyId, algorithm: algorithmOf(o.algorithm),
    key: readKey({ name: 'command line', key: o.key, keyFile: o.keyFile }), rlocs: o.rloc ?? [],
    retries: Number(o.retries), initialTimeoutMs: Number(o.timeout), refreshIntervalMs: 0,
    ...(o.ttl === undefined ? {} : { recordTtlMinutes: Number(o.ttl) }),
  };
}

/** Registers `intercloud root map-server` and `intercloud map …`. */
export function registerLispCommands(program: Command): void {
  const root = program.commands.find((c) => c.name() === 'root')
    ?? program.command('root').description('run the shared services of the Intercloud Root');

  root.command('map-server')
    .description('run a LISP Map-Server/Map-Resolver (RFC 9301); logs one JSON line per message on stdout')
    .option('--config <file>', 'YAML/JSON: { listen, registrationTimeoutSeconds?, nonceWindowSeconds?, trust?: { root, crl? }, stateFile?, sites: [{ name, keyId, key|keyFile, allowedPrefixes }] }')
    .option('--listen <host:port>', `address to bind (default 127.0.0.1:${LISP_CONTROL_PORT})`)
    .option('--site <name:keyId:keyFile:prefixes>', 'a site (repeatable), instead of or besides --config', collect)
    .option('--registration-timeout <seconds>', 'registration timeout (default 180, RFC 9301 §8.2)')
    .action(async (o: { config?: string; listen?: string; site?: string[]; registrationTimeout?: string }) => {
      let raw: unknown = { sites: [] };
      if (o.config !== undefined) {
        try {
          raw = parseYaml(readFileSync(o.config, 'utf8'));
        } catch (err) {
          throw configError(`cannot read the map server config '${o.config}'`, err);
        }
      }
      const merged = raw as { sites?: unknown[]; listen?: string; registrationTimeoutSeconds?: number };
      const candidate = {
        ...merged,
        sites: [...(merged.sites ?? []), ...(o.site ?? []).map(parseSiteFlag)],
        ...(o.listen === undefined ? {} : { listen: o.listen }),
        ...(o.registrationTimeout === undefined ? {} : { registrationTimeoutSeconds: Number(o.registrationTimeout) }),
      };
      const parsed = MapServerConfigSchema.safeParse(candidate);
      if (!parsed.success) {
        throw configError(`invalid map server config: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
      }
      const cfg = parsed.data;
      const sites: SiteConfig[] = cfg.sites.map((s) => ({ name: s.name, keyId: s.keyId, key: readKey(s), allowedPrefixes: s.allowedPrefixes }));
      const listen = parseHostPort(cfg.listen);
      const log = (event: Record<string, unknown>): void => {
        process.stdout.write(JSON.stringify({ time: new Date().toISOString(), ...event }, (_k, v: unknown) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v)) + '\n');
      };
      const server = await startMapServer({
        host: listen.host, port: listen.port, sites,
        ...(cfg.trust === undefined ? {} : { trust: readTrust(cfg.trust) }),
        ...(cfg.stateFile === undefined ? {} : { stateFile: cfg.stateFile }),
        ...(cfg.nonceWindowSeconds === undefined ? {} : { nonceWindowSeconds: cfg.nonceWindowSeconds }),
        ...(cfg.registrationTimeoutSeconds === undefined ? {} : { registrationTimeoutSeconds: cfg.registrationTimeoutSeconds }),
        onEvent: (e) => log(e.kind === 'rejected' ? { kind: e.kind, from: e.from, ...(e.site ? { site: e.site } : {}), error: e.error.toJSON() } : { ...e }),
      });
      log({ kind: 'listening', address: server.address, sites: sites.map((s) => ({ name: s.name, allowedPrefixes: s.allowedPrefixes })), handOvers: cfg.trust !== undefined });
      await new Promise<void>((resolve) => {
        process.once('SIGTERM', resolve);
        process.once('SIGINT', resolve);
      });
      await server.close();
    });

  const map = program.command('map').description('the LISP mapping system: look up and register EIDs');

  map.command('lookup')
    .description('ask a Map-Resolver for the RLOCs of EID (Map-Request in an Encapsulated Control Message)')
    .argument('<eid>', 'an IPv4/IPv6 address or prefix')
    .requiredOption('--resolver <host:port>', 'the Map-Resolver')
    .option('--retries <n>', 'retries after the first attempt', '2')
    .option('--timeout <ms>', 'wait for the first answer, doubling per retry', '1000')
    .option('--json', 'print json')
    .action(async (eid: string, o: { resolver: string; retries: string; timeout: string; json?: boolean }) => {
      const rec = await lookupEid(eid, { resolver: parseHostPort(o.resolver), retries: Number(o.retries), initialTimeoutMs: Number(o.timeout) });
      if (o.json) {
        printJson({ eid: formatPrefix(rec.eid), ttlMinutes: rec.ttl, action: rec.action, rlocs: rec.locators });
      } else if (rec.locators.length === 0) {
        process.stdout.write(`${formatPrefix(rec.eid)} not registered (negative map-reply, action ${rec.action}, ttl ${rec.ttl} min)\n`);
      } else {
        process.stdout.write(`${formatPrefix(rec.eid)} ttl ${rec.ttl} min\n`);
        for (const l of rec.locators) process.stdout.write(`  rloc ${l.address} priority ${l.priority} weight ${l.weight}${l.reachable ? '' : ' unreachable'}\n`);
      }
      if (rec.locators.length === 0) process.exitCode = EXIT.failed;
    });

  const addRegistrarFlags = (c: Command): Command => c
    .requiredOption('--map-server <host:port>', 'the Map-Server')
    .requiredOption('--key-id <n>', 'RFC 9301 key id of the site key (0–255)')
    .option('--key <secret>', 'the site key')
    .option('--key-file <file>', 'file holding the site key')
    .option('--algorithm <name>', 'hmac-sha-1-96 or hmac-sha-256-128', 'hmac-sha-256-128')
    .option('--retries <n>', 'retries after the first attempt', '3')
    .option('--timeout <ms>', 'wait for the first Map-Notify, doubling per retry', '1000')
    .option('--json', 'print json');

  addRegistrarFlags(map.command('register'))
    .description('register EIDs (host prefixes unless a /len is given) with RLOCs; waits for the Map-Notify')
    .argument('<eid...>', 'addresses or prefixes')
    .requiredOption('--rloc <address>', 'an RLOC of this cloud (repeatable)', collect)
    .option('--ttl <minutes>', 'record TTL (default 1440)')
    .option('--hand-over <file>', 'a hand-over of these EIDs signed by their holder (JSON), presented first')
    .action(async (eids: string[], o: RegisterFlags & { handOver?: string }) => {
      let handOver: string | undefined;
      if (o.handOver !== undefined) {
        try {
          handOver = readFileSync(o.handOver, 'utf8');
        } catch (err) {
          throw usage(`cannot read the hand-over '${o.handOver}'`, err);
        }
      }
      const notify = await registerEid(registrarOptions(o), eids, undefined, handOver);
      const out = { registered: notify.records.map((r) => formatPrefix(r.eid)), nonce: `0x${notify.nonce.toString(16)}` };
      if (o.json) printJson(out);
      else process.stdout.write(`registered ${out.registered.join(' ')} (map-notify ${out.nonce})\n`);
    });

  addRegistrarFlags(map.command('withdraw'))
    .description('withdraw EIDs (Map-Register with record TTL 0); waits for the Map-Notify')
    .argument('<eid...>', 'addresses or prefixes')
    .option('--rloc <address>', 'ignored for a withdrawal (accepted for symmetry)', collect)
    .action(async (eids: string[], o: RegisterFlags) => {
      const notify = await withdrawEid({ ...registrarOptions(o), rlocs: o.rloc?.length ? o.rloc : ['0.0.0.0'] }, eids);
      const out = { withdrawn: notify.records.map((r) => formatPrefix(r.eid)), nonce: `0x${notify.nonce.toString(16)}` };
      if (o.json) printJson(out);
      else process.stdout.write(`withdrawn ${out.withdrawn.join(' ')} (map-notify ${out.nonce})\n`);
    });
}
