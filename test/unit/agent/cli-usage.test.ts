/**
 * Usage errors of the `intercloud` command line: commander's own (unknown command or option, a
 * missing argument or option value) and the commands' own checks of their flags all carry the CLI's
 * code `CLI_USAGE` and exit 2, instead of exiting 1 or borrowing another area's code.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { runCli } from '../../../agent/cli/main.js';
import { CLI_ERRORS, EXIT } from '../../../agent/cli/output.js';

describe('intercloud usage errors', () => {
  let out: string[];
  let err: string[];
  beforeEach(() => {
    out = [];
    err = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation((s) => (err.push(String(s)), true));
    process.exitCode = undefined;
  });
  afterEach(() => {
    vi.restoreAllMocks();
    process.exitCode = undefined;
  });

  it('declares CLI_USAGE in the cli code table', () => {
    expect(CLI_ERRORS.CLI_USAGE).toMatchObject({ retryable: false });
    expect(EXIT.usage).toBe(2);
  });

  it.each([
    ['an unknown option', ['agent', '--no-such-flag'], "unknown option '--no-such-flag'"],
    ['an unknown command', ['no-such-command'], "unknown command 'no-such-command'"],
    ['a missing argument', ['hv', 'describe'], "missing required argument 'vm'"],
    ['an option without its value', ['agent', '--config'], "option '-c, --config <file>' argument missing"],
    ['a missing required option', ['ova', 'pack', 'x.ovf'], "required option '--out <file>' not specified"],
    ['too many arguments', ['ca', 'crl', '--dir', 'd', '--out', 'o', 'extra'], "too many arguments for 'crl'"],
  ])('commander: %s exits 2 with CLI_USAGE', async (_what, argv, text) => {
    expect(await runCli(argv)).toBe(2);
    const stderr = err.join('');
    expect(stderr).toContain('error [CLI_USAGE]: ');
    expect(stderr).toContain(text);
  });

  it.each([
    ['migrate without --to or --auto', ['migrate', 'web1'], 'give exactly one of --to CLOUD or --auto'],
    ['migrate with an unknown mode', ['migrate', 'web1', '--to', 'cloud-b', '--mode', 'hot'], "--mode must be cold, warm or live, not 'hot'"],
    ['migrate with a fallback but no mode', ['migrate', 'web1', '--to', 'cloud-b', '--fallback', 'cold'], '--fallback needs --mode'],
    ['ovf convert --to with an unknown format', ['ovf', 'convert', '--to', 'vmx', 'x.ovf'], "--to must be 'libvirt' or 'ovf'"],
    ['ova pack with half a signer', ['ova', 'pack', 'x.ovf', '--out', 'x.ova', '--sign-cert', 'c.pem'], '--sign-cert and --sign-key go together'],
    ['ca init with a bad key type', ['ca', 'init', '--dir', '/nonexistent', '--key-type', 'dsa'], "--key-type 'dsa'"],
    ['audit verify with --count alone', ['audit', 'verify', '/nonexistent/audit.log', '--count', '3'], 'give --count and --head together'],
    ['time --source other', ['time', '--source', 'ntp'], "--source 'ntp'"],
    ['map register with a bad key id', ['map', 'register', '10.0.0.1', '--map-server', '127.0.0.1:1', '--key-id', '300', '--key', 'k', '--rloc', '192.0.2.1'], "--key-id '300'"],
    ['peers with a bad number', ['peers', '--cloud', 'a', '--cert', 'c', '--key', 'k', '--root', 'r', '--min-vcpus', 'many'], "--min-vcpus 'many'"],
    ['transfer send with a bad chunk size', ['transfer', 'send', '--id', '00000000-0000-4000-8000-000000000000', '--from', 'cloud-a', '--to', 'cloud-b', '--broker', 'amqps://127.0.0.1:1', '--ca', 'ca', '--cert', 'c', '--key', 'k', '--journal-dir', '/nonexistent', '--source', '/dev/null', '--chunk-size', 'big'], "--chunk-size 'big'"],
  ])('a command: %s exits 2 with CLI_USAGE', async (_what, argv, text) => {
    expect(await runCli(argv)).toBe(2);
    const stderr = err.join('');
    expect(stderr).toContain('error [CLI_USAGE]: ');
    expect(stderr).toContain(text);
  });

  it('help and version are not errors', async () => {
    expect(await runCli(['--version'])).toBe(0);
    expect(out.join('')).toContain('0.1.0');
    expect(await runCli(['agent', '--help'])).toBe(0);
    expect(out.join('')).toContain('--check');
    expect(err.join('')).not.toContain('CLI_USAGE');
  });
});
