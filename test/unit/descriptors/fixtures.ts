/**
 * Where the shared real-world descriptors are: read in place from `../shared/fixtures` relative
 * to the repository (never copied into it).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** `<repo>/../shared/fixtures`, or `$INTERCLOUD_FIXTURES` when the checkout sits elsewhere. */
export const FIXTURES = process.env['INTERCLOUD_FIXTURES'] ?? resolve(dirname(fileURLToPath(import.meta.url)), '../../../../shared/fixtures');

/** Every fixture file as `{ dir, name, path }`. */
export function allFixtures(): Array<{ dir: string; name: string; path: string }> {
  return ['ovf', 'libvirt', 'virtimage'].flatMap((dir) =>
    readdirSync(join(FIXTURES, dir)).sort().map((name) => ({ dir, name, path: join(FIXTURES, dir, name) })),
  );
}

/** A fixture's bytes. */
export function fixtureBytes(dir: string, name: string): Buffer {
  return readFileSync(join(FIXTURES, dir, name));
}
