/**
 * The `intercloud` command line loads only the area a command belongs to (a CLI start that
 * imports every area costs about 2 s of CPU more than one that imports its own), and every
 * area's table entry names exactly the top-level commands the area registers.
 */
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { CLI_AREAS, areasFor, buildProgram } from '../../../agent/cli/main.js';

describe('intercloud areas', () => {
  it('names, for each area, exactly the top-level commands it registers', async () => {
    for (const area of CLI_AREAS) {
      const program = new Command('intercloud');
      (await area.load())(program);
      expect(program.commands.map((c) => c.name()).sort(), `area of ${area.commands.join(', ')}`).toEqual([...area.commands].sort());
    }
  });

  it('loads only the area of the command given', () => {
    expect(areasFor(['ca', 'init', '--dir', 'd']).map((a) => a.commands)).toEqual([['ca']]);
    expect(areasFor(['audit', 'verify', 'f']).map((a) => a.commands)).toEqual([['audit']]);
    expect(areasFor(['job', 'x']).map((a) => a.commands)).toEqual([['migrate', 'jobs', 'job', 'cancel']]);
    expect(areasFor(['map', 'lookup', '10.0.0.1']).map((a) => a.commands)).toEqual([['root', 'map']]);
  });

  it('loads every area for help, the version, no command or an unknown one', () => {
    for (const argv of [[], ['--help'], ['--version'], ['help', 'ca'], ['no-such-command'], ['-x', 'ca']]) {
      expect(areasFor(argv), argv.join(' ')).toEqual(CLI_AREAS);
    }
  });

  it('builds the program with every command for help, in the table\'s order', async () => {
    const program = await buildProgram([]);
    expect(program.commands.map((c) => c.name())).toEqual(CLI_AREAS.flatMap((a) => a.commands));
    const ca = await buildProgram(['ca', 'init']);
    expect(ca.commands.map((c) => c.name())).toEqual(['ca']);
  });
});
