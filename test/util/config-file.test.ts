/**
 * The daemons' config file: keys derived from each command's option table,
 * checked by a schema (types, ranges, choices, unknown keys with a
 * suggestion), one line naming the file and the key for every problem, flags
 * over the file over the defaults, --print-config with secrets redacted, and
 * the example files under examples/ valid and complete.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ROLES, specOfRole } from '../../src/cli/commands/config.ts';
import { type OptionSpec, optionSource, parseArgs } from '../../src/util/args.ts';
import { configKeys, parseConfigText, readConfigFile } from '../../src/util/config-file.ts';
import { effectiveConfig } from '../../src/util/config-options.ts';
import { isOverlayError } from '../../src/util/errors.ts';
import { runCli } from '../support/cli.ts';

const CLI = fileURLToPath(new URL('../../bin/secp2psip.mjs', import.meta.url));

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'secp2psip-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const write = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

const specs = new Map<string, Record<string, OptionSpec>>();
for (const role of ROLES) specs.set(role, await specOfRole(role));
function readSpec(role: string): Record<string, OptionSpec> {
  return specs.get(role) as Record<string, OptionSpec>;
}

/** The one-line BAD_CONFIG message of parsing `text` against a command's options. */
function problem(text: string, spec: Record<string, OptionSpec>, role?: string): string {
  try {
    parseConfigText(text, 'x.toml', spec, role);
  } catch (e) {
    assert.ok(isOverlayError(e, 'BAD_CONFIG'), String(e));
    assert.doesNotMatch(e.message, /\n/, 'one line');
    return e.message;
  }
  assert.fail('accepted');
}

describe('config file schema', () => {
  const adapter = readSpec('adapter');

  it('accepts numbers, strings, booleans and lists as the options take them', () => {
    const node = parseConfigText(
      'sip = "127.0.0.1:5060"\nlayers = 3\nopen-registration = true\npeer = ["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@h:1", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb@h:2"]\nadmin-key = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"\n',
      'n.toml',
      readSpec('node'),
    );
    assert.deepEqual(node.values, {
      sip: '127.0.0.1:5060',
      layers: '3',
      'open-registration': true,
      peer: ['aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@h:1', 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb@h:2'],
      'admin-key': ['cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc'],
    });
  });

  it('refuses wrong types, out-of-range numbers and unknown choices, naming the file and the key', () => {
    assert.match(
      problem('timeout = 30\n', adapter),
      /^bad configuration: x\.toml: key 'timeout': .*100 and 60000, got 30$/,
    );
    assert.match(problem('timeout = "soon"\n', adapter), /key 'timeout': must be an integer/);
    assert.match(problem('mode = "loud"\n', adapter), /key 'mode': must be one of signed, protected/);
    assert.match(problem('open-registration = "yes"\n', adapter), /key 'open-registration': must be true or false/);
    assert.match(problem('sip = ["a", "b"]\n', adapter), /key 'sip': must be a string or a number/);
    assert.match(problem('[phone-users]\nalice = "short"\n', adapter), /key 'phone-users\.alice': .*8 characters/);
    // The form of an address, a peer, a digest list: checked in the file, not only when the daemon starts.
    assert.match(problem('sip = "nowhere"\n', adapter), /key 'sip': the address must be host:port/);
    assert.match(problem('digest = "SHA-1"\n', adapter), /key 'digest': 'SHA-1' is not SHA-256 or MD5/);
    assert.match(problem('peer = ["192.0.2.6:7000"]\n', readSpec('bootstrap')), /key 'peer\.0': needs the peer's key/);
    assert.match(problem('admin-key = ["ab"]\n', readSpec('node')), /key 'admin-key\.0': must be 64 hex/);
  });

  it('refuses unknown keys with the closest known key, and one-shot actions', () => {
    assert.match(
      problem('new-names-per-minut = 5\n', adapter),
      /unknown key 'new-names-per-minut' \(did you mean 'new-names-per-minute'\?\)/,
    );
    assert.match(problem('colour = "red"\n', adapter), /unknown key 'colour'$/);
    assert.match(
      problem('add-user = "alice"\n', adapter),
      /key 'add-user' is a one-shot action: give it on the command line/,
    );
    // The registrar keeps no phone users: no [phone-users] table there.
    assert.match(problem('[phone-users]\na = "12345678"\n', readSpec('registrar')), /unknown key 'phone-users'/);
  });

  it('a TOML syntax error names the file and the line', () => {
    assert.match(
      problem('sip = "127.0.0.1:5060"\ntimeout = \n', adapter),
      /^bad configuration: x\.toml:2: TOML syntax error/,
    );
  });

  it('an option added to a command`s table is a config key at once', () => {
    const spec = { ...adapter, 'metrics-port': { type: 'string', min: 1, max: 65535, help: 'x' } } as const;
    assert.ok(configKeys(spec).includes('metrics-port'));
    assert.deepEqual(parseConfigText('metrics-port = 9100\n', 'x.toml', spec).values, { 'metrics-port': '9100' });
    assert.match(problem('metrics-port = 0\n', spec), /key 'metrics-port': must be between 1 and 65535/);
  });
});

describe('flags, file and defaults', () => {
  it('a flag overrides the file, the file overrides the default', () => {
    const path = write(
      'a.toml',
      'role = "adapter"\ntimeout = 3000\ncache-ms = 10\n[phone-users]\nbob = "bob-password"\n',
    );
    const args = parseArgs(['--config', path, '--timeout', '4000'], readSpec('adapter'));
    assert.equal(args.timeout, '4000');
    assert.equal(optionSource(args, 'timeout'), 'flag');
    assert.equal(args['cache-ms'], '10');
    assert.equal(optionSource(args, 'cache-ms'), 'file');
    assert.equal(args.mode, 'signed');
    assert.equal(optionSource(args, 'mode'), 'default');
    const printed = effectiveConfig(args, 'adapter');
    assert.match(printed, /^timeout = 4000 {2}# command line$/m);
    assert.match(printed, /^cache-ms = 10 {2}# config file$/m);
    assert.match(printed, /^mode = "signed" {2}# default$/m);
    assert.match(printed, /^bob = "\[redacted\]"$/m);
    assert.doesNotMatch(printed, /bob-password/);
    // A password inside a URL (a PostgreSQL registry) is redacted whatever the key is called.
    const pg = write('pg.toml', 'registry = "postgres://boot:pg-secret@db.example:5432/names"\n');
    const boot = effectiveConfig(parseArgs(['--config', pg], readSpec('bootstrap')), 'bootstrap');
    assert.match(boot, /^registry = "postgres:\/\/boot:\[redacted\]@db\.example:5432\/names" {2}# config file$/m);
    assert.doesNotMatch(boot, /pg-secret/);
    // What --print-config prints is itself a valid config file.
    assert.deepEqual(parseConfigText(printed, 'printed.toml', readSpec('adapter'), 'adapter').values.timeout, '4000');
  });
});

describe('secp2psip config check and --print-config (processes)', { timeout: 120_000 }, () => {
  it('every example file passes config check', async () => {
    // In process for each (what `config check` runs), and once through the command itself.
    for (const role of ROLES) {
      const path = join(ROOT, 'examples', `${role}.toml`);
      const cfg = readConfigFile(path, readSpec(role), role);
      assert.equal(cfg.role, role);
    }
    const r = await runCli(['config', 'check', join(ROOT, 'examples', 'adapter.toml')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /adapter\.toml: ok \(secp2psip adapter, 3 keys\)/);
  });

  it('each example documents every option of its command (set or commented out)', () => {
    const files = readdirSync(join(ROOT, 'examples')).filter((f) => f.endsWith('.toml'));
    assert.deepEqual(files.sort(), ROLES.map((r) => `${r}.toml`).sort());
    for (const role of ROLES) {
      const text = readFileSync(join(ROOT, 'examples', `${role}.toml`), 'utf8');
      for (const key of configKeys(readSpec(role)))
        assert.match(text, new RegExp(`^(# )?${key} = `, 'm'), `examples/${role}.toml does not document '${key}'`);
      if (readSpec(role)['add-user'])
        assert.match(text, /^# \[phone-users\]$/m, `examples/${role}.toml: [phone-users]`);
    }
  });

  it('a bad file is one line naming the file and the key, exit 2; the role comes from the file or --role', async () => {
    const bad = write('bad.toml', 'role = "bootstrap"\nk = 0\n');
    const r = await runCli(['config', 'check', bad]);
    assert.equal(r.code, 2);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.match(r.stderr, /bad\.toml: key 'k': must be between 1 and 255, got 0/);
    const other = await runCli(['config', 'check', bad, '--role', 'adapter']);
    assert.equal(other.code, 2);
    assert.match(other.stderr, /key 'role': must be "adapter"/);
    const none = await runCli(['config', 'check', write('none.toml', 'k = 3\n')]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /none\.toml: no 'role' key/);
    const syntax = await runCli(['config', 'check', write('syntax.toml', 'role = "bootstrap"\n\nk = [\n')]);
    assert.equal(syntax.code, 2);
    assert.match(syntax.stderr, /syntax\.toml:\d+: TOML syntax error/);
  });

  it('a daemon given a bad file exits 2 with one line, before listening; a value the command refuses names the key', async () => {
    // A file for another command is refused as such, before its keys are judged against the wrong options.
    const wrongRole = await runCli(['adapter', '--config', write('r.toml', 'role = "node"\ndht = "127.0.0.1:7000"\n')]);
    assert.equal(wrongRole.code, 2);
    assert.match(wrongRole.stderr, /r\.toml: key 'role': must be "adapter", the file is for "node"\n$/);
    // The schema checks each value; what only the command can judge (two values together) is traced to the file.
    const badPair = await runCli(['registrar', '--config', write('l.toml', 'min-expires = 100\nmax-expires = 50\n')]);
    assert.equal(badPair.code, 2);
    assert.match(
      badPair.stderr,
      /^secp2psip registrar: bad configuration: .*l\.toml: key 'max-expires': --max-expires must not be below --min-expires\n$/,
    );
  });

  it('--print-config prints file, flags and defaults with secrets redacted, then exits', async () => {
    const path = write(
      'p.toml',
      'role = "node"\nsip = "127.0.0.1:5999"\ndht = "127.0.0.1:7999"\ndata = "/nonexistent/x"\n[phone-users]\nphone = "phone-secret-1"\n',
    );
    const r = await runCli(['node', '--config', path, '--layers', '4', '--print-config']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^layers = 4 {2}# command line$/m);
    assert.match(r.stdout, /^sip = "127\.0\.0\.1:5999" {2}# config file$/m);
    assert.match(r.stdout, /^setup-period = 900 {2}# default$/m);
    assert.match(r.stdout, /^phone = "\[redacted\]"$/m);
    assert.doesNotMatch(r.stdout, /phone-secret-1/);
  });

  it('--help shows the defaults', async () => {
    const r = await runCli(['bootstrap', '--help']);
    assert.match(r.stdout, /--k\s+pieces needed to rebuild a user key \(default: 3\)/);
    assert.match(r.stdout, /--config\s/);
  });

  it('--log-format pretty writes text for people; the default off a terminal is JSON lines', async () => {
    const firstLines = async (extra: string[]) => {
      const p = spawn(process.execPath, [CLI, 'registrar', '--listen', '127.0.0.1:0', ...extra], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, NODE_ENV: 'production' },
      });
      let err = '';
      p.stderr.on('data', (d: Buffer) => (err += d.toString()));
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`registrar did not start: ${err}`)), 30_000);
        p.stderr.on('data', () => {
          if (err.includes('registrar listening')) {
            clearTimeout(t);
            resolve();
          }
        });
      });
      p.kill('SIGTERM');
      await new Promise((r) => p.once('exit', r));
      return err.split('\n').find((l) => l.includes('registrar listening')) ?? '';
    };
    const pretty = await firstLines(['--log-format', 'pretty']);
    assert.match(pretty, /INFO.*registrar listening on 127\.0\.0\.1:\d+/);
    assert.throws(() => JSON.parse(pretty));
    const json = await firstLines([]);
    assert.equal((JSON.parse(json) as { msg: string }).msg.startsWith('registrar listening'), true);
  });
});
