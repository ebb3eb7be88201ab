/**
 * Damaged data files with the real daemons: a bootstrap, an adapter and a
 * WhanauSIP node whose data directory holds a file that is not a database, a
 * table of another shape, a garbage key, or state without its key, or a
 * bootstrap whose registry was truncated or deleted after it had users. Each
 * exits non-zero at once with one line naming the file (and the recovery
 * command), having released every port; none starts on a silent new key or
 * an empty registry.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { Registry } from '../../src/secp2psip/registry.ts';
import { type BootstrapProc, startAdapterProc, startBootstrapProc } from '../secp2psip/procs.ts';
import { freePort } from '../sip/e2e-helpers.ts';
import { type CliRun, runCli } from '../support/cli.ts';
import { startCli, stopCli } from '../whanausip/cli-process.ts';

/** The command's own lines on stderr (log lines are JSON). */
const plainLines = (r: CliRun) => r.stderr.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('{'));

/** Exited non-zero (not killed by the time limit) with exactly one line matching every pattern. */
function assertFatal(r: CliRun, ...patterns: RegExp[]): void {
  assert.equal(r.code, 1, `exit code ${r.code}; stderr:\n${r.stderr.slice(-1500)}`);
  const lines = plainLines(r);
  assert.equal(lines.length, 1, r.stderr);
  for (const p of patterns) assert.match(lines[0], p);
}

/** Remove a SQLite file with its WAL and shared-memory files. */
function removeDb(file: string): void {
  for (const ext of ['', '-wal', '-shm']) rmSync(file + ext, { force: true });
}

function replaceWith(file: string, content: string | Buffer): void {
  removeDb(file);
  writeFileSync(file, content, { mode: 0o600 });
}

function keys(b: number) {
  return { signKey: new Uint8Array(32).fill(b), sealKey: new Uint8Array(32).fill(b + 1) };
}

function portFree(port: number): Promise<boolean> {
  const tcp = new Promise<boolean>((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
  const udp = new Promise<boolean>((resolve) => {
    const u = createSocket('udp4');
    u.once('error', () => resolve(false));
    u.bind(port, '127.0.0.1', () => u.close(() => resolve(true)));
  });
  return Promise.all([tcp, udp]).then(([a, b]) => a && b);
}

const LIMIT = { timeoutMs: 30_000 };
const bootArgs = (dir: string, ...extra: string[]) => [
  'bootstrap',
  '--listen',
  '127.0.0.1:0',
  '--data',
  dir,
  '--log-level',
  'warn',
  ...extra,
];

describe('damaged data files stop a daemon with one line', { timeout: 600_000 }, () => {
  const base = mkdtempSync(join(tmpdir(), 'data-faults-'));
  let boot: BootstrapProc;
  before(async () => {
    boot = await startBootstrapProc(join(base, 'boot'));
  });
  after(async () => {
    await boot?.stop();
    rmSync(base, { recursive: true, force: true });
  });

  it('a registry truncated or deleted after it had users is refused, with the recovery commands', async () => {
    const dir = join(base, 'reg');
    const reg = join(dir, 'registry.sqlite');
    await (await startBootstrapProc(dir)).stop();
    const r = new Registry(reg);
    r.claim('carl', keys(1), 1000);
    r.claim('dana', keys(3), 1000);
    r.close();
    await (await startBootstrapProc(dir)).stop();
    const saved = join(base, 'registry-saved.sqlite');
    copyFileSync(reg, saved);

    replaceWith(reg, '');
    assertFatal(
      await runCli(bootArgs(dir), LIMIT),
      /registry\.sqlite: is empty \(0 bytes\), but this bootstrap had 2 registered users/,
      /restore it from a backup/,
      /--accept-empty-registry/,
    );
    removeDb(reg);
    assertFatal(await runCli(bootArgs(dir), LIMIT), /registry\.sqlite: is missing, but this bootstrap had 2/);

    // The saved copy restored: both names are back. An online backup taken while it runs holds them too.
    copyFileSync(saved, reg);
    const restored = await startBootstrapProc(dir);
    const backup = join(base, 'registry-backup.sqlite');
    const b = await runCli(['bootstrap', '--data', dir, '--backup', backup], LIMIT);
    await restored.stop();
    assert.match(restored.stderr(), /"users":2/);
    assert.equal(b.code, 0, b.stderr);
    assert.equal(b.stdout, `backed up 2 users to ${backup}\n`);
    const copy = new Registry(backup);
    assert.deepEqual(
      copy.all().map((e) => e.name),
      ['carl', 'dana'],
    );
    copy.close();

    // The operator may choose to start empty: said plainly in the log.
    removeDb(reg);
    const empty = await startBootstrapProc(dir, '127.0.0.1:0', ['--accept-empty-registry']);
    await empty.stop();
    assert.match(empty.stderr(), /"hadUsers":2.*every name is free again/);
  });

  it('a bootstrap: key missing beside its registry, garbage key, garbage or wrong-schema registry', async () => {
    const dir = join(base, 'keyless');
    const key = join(dir, 'node', 'identity.pem');
    await (await startBootstrapProc(dir)).stop();
    const r = new Registry(join(dir, 'registry.sqlite'));
    r.claim('erin', keys(5), 1000);
    r.close();
    const saved = join(base, 'boot-key.pem');
    copyFileSync(key, saved);

    rmSync(key);
    assertFatal(
      await runCli(bootArgs(dir), LIMIT),
      /node\/identity\.pem: missing, but the data directory holds registry\.sqlite \(1 users\)/,
      /restore the key from a backup/,
    );
    replaceWith(key, 'not a key\n');
    assertFatal(await runCli(bootArgs(dir), LIMIT), /node\/identity\.pem: unreadable key/);
    copyFileSync(saved, key);

    const reg = join(dir, 'registry.sqlite');
    replaceWith(reg, 'this is not a database, just some text long enough to be read as a header\n'.repeat(20));
    assertFatal(await runCli(bootArgs(dir), LIMIT), /registry\.sqlite: file is not a database/);
    removeDb(reg);
    const db = new Database(reg);
    db.exec('CREATE TABLE users (name TEXT PRIMARY KEY, owner TEXT)');
    db.close();
    assertFatal(await runCli(bootArgs(dir), LIMIT), /registry\.sqlite: table users lacks column sign_key/);
  });

  it('an adapter: garbage or wrong-schema trust.sqlite exits at once and frees its ports; no new key beside its state', async () => {
    const dir = join(base, 'adapter');
    await (await startAdapterProc(boot.spec, dir)).stop();
    const trust = join(dir, 'trust.sqlite');
    const port = await freePort();
    const adapterArgs = ['adapter', '--sip', `127.0.0.1:${port}`, '--bootstrap', boot.spec, '--data', dir];

    replaceWith(trust, Buffer.alloc(8192, 0x5a));
    assertFatal(await runCli([...adapterArgs, '--log-level', 'warn'], LIMIT), /trust\.sqlite: file is not a database/);
    assert.ok(await portFree(port), 'the SIP port is free again');

    removeDb(trust);
    const db = new Database(trust);
    db.exec('CREATE TABLE trusted (name TEXT PRIMARY KEY)');
    db.close();
    assertFatal(await runCli(adapterArgs, LIMIT), /trust\.sqlite: table trusted lacks column sign_key/);

    removeDb(trust);
    rmSync(join(dir, 'node', 'identity.pem'));
    assertFatal(
      await runCli(adapterArgs, LIMIT),
      /node\/identity\.pem: missing, but the data directory holds .*bindings\.sqlite/,
      /--new-node-key/,
    );
    assert.ok(await portFree(port));
    // The operator may ask for a new node key: the adapter's users keep their keys.
    const renewed = await startAdapterProc(boot.spec, dir, '127.0.0.1:0', ['--new-node-key']);
    await renewed.stop();
    assert.match(renewed.stderr(), /new node key made as asked/);
  });

  it('a WhanauSIP node: garbage peers.sqlite exits; no new key beside its peers', async () => {
    const dir = join(base, 'whanau');
    const peer = `${'ab'.repeat(20)}@127.0.0.1:9`;
    const node = await startCli('node', [
      '--sip',
      '127.0.0.1:0',
      '--dht',
      '127.0.0.1:0',
      '--data',
      dir,
      '--peer',
      peer,
    ]);
    await stopCli(node);
    const port = await freePort();
    const args = ['node', '--sip', `127.0.0.1:${port}`, '--dht', '127.0.0.1:0', '--data', dir];
    const peers = join(dir, 'peers.sqlite');
    const saved = join(base, 'peers-saved.sqlite');
    copyFileSync(peers, saved);

    replaceWith(peers, Buffer.alloc(8192, 0x41));
    assertFatal(await runCli(args, LIMIT), /peers\.sqlite: file is not a database/);
    assert.ok(await portFree(port));

    removeDb(peers);
    copyFileSync(saved, peers);
    rmSync(join(dir, 'identity.pem'));
    assertFatal(
      await runCli(args, LIMIT),
      /identity\.pem: missing, but the data directory holds peers\.sqlite \(1 peers\)/,
    );
  });
});
