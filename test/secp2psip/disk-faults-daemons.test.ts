/**
 * An adapter on a data directory that refuses writes, as a real process:
 * started while its directory is read-only it still starts (the trust store
 * and the phone bindings are read, then kept in memory), calls through it
 * verify and succeed although the keys it learns cannot be written, the
 * fault is logged once with the file and errno, and once the directory is
 * writable again the trust file catches up without a restart.
 *
 * chmod does not stop root: as root the adapter runs as `nobody` on a
 * directory owned by `nobody`.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { fillDisk, freeDisk, isRoot, mountTinyTmpfs, unmount } from '../support/disk.ts';
import { registerAndCall, TestPhones, udpPeer as peer } from './phones.ts';
import { type AdapterProc, type BootstrapProc, eventually, startAdapterProc, startBootstrapProc } from './procs.ts';

const NOBODY = 65534;

interface Unprivileged {
  proc: ChildProcess;
  sip: string;
  stderr: () => string;
  stop(): Promise<void>;
}

/** `secp2psip adapter` as a user chmod applies to (nobody when we are root). */
function startUnprivilegedAdapter(bootstrap: string, dataDir: string, sip: string): Promise<Unprivileged> {
  const args = [
    'bin/secp2psip.mjs',
    'adapter',
    '--sip',
    sip,
    '--bootstrap',
    bootstrap,
    '--data',
    dataDir,
    '--open-registration',
  ];
  const proc = isRoot
    ? spawn('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, NODE_ENV: 'production', SECP2PSIP_LOG: 'info' },
      })
    : spawn(process.execPath, args, {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, NODE_ENV: 'production', SECP2PSIP_LOG: 'info' },
      });
  let out = '';
  let err = '';
  proc.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const gone = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    await gone;
    clearTimeout(t);
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`adapter did not start:\n${err.slice(-2000)}`));
    }, 60_000);
    proc.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^adapter sip:(\S+)\n/m.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, sip: m[1], stderr: () => err, stop });
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`adapter exited with ${code}:\n${err.slice(-2000)}`));
    });
  });
}

/** chmod the data directory and everything under it, as a read-only mount would make them. */
function setTreeWritable(dir: string, writable: boolean, files = true): void {
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (files) chmodSync(join(d, e.name), writable ? 0o600 : 0o400);
    }
    chmodSync(d, writable ? 0o700 : 0o500);
  };
  walk(dir);
}

function chownTree(dir: string): void {
  if (!isRoot) return;
  chownSync(dir, NOBODY, NOBODY);
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) chownTree(p);
    else chownSync(p, NOBODY, NOBODY);
  }
}

function trustedNames(file: string): string[] {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare('SELECT name FROM trusted ORDER BY name').all() as Array<{ name: string }>).map((r) => r.name);
  } finally {
    db.close();
  }
}

describe('an adapter whose data directory refuses writes', { timeout: 300_000 }, () => {
  const base = mkdtempSync(join(tmpdir(), 'disk-faults-'));
  const dirB = join(base, 'B');
  let boot: BootstrapProc;
  let A: AdapterProc;
  let B: Unprivileged | undefined;
  const stops: Array<() => Promise<void>> = [];
  const phones = new TestPhones();

  before(async () => {
    chmodSync(base, 0o755);
    mkdirSync(dirB, { mode: 0o700 });
    chownTree(dirB);
    boot = await startBootstrapProc(join(base, 'boot'));
    A = await startAdapterProc(boot.spec, join(base, 'A'));
    // A first run of B with a writable directory: its node key, bob's key, alice trusted.
    B = await startUnprivilegedAdapter(boot.spec, dirB, '127.0.0.1:0');
    await registerAndCall(phones, 'alice', A.sip, 'bob', B.sip);
    await B.stop();
    B = undefined;
    assert.deepEqual(trustedNames(join(dirB, 'trust.sqlite')), ['alice', 'bob']);
  });

  after(async () => {
    await phones.close();
    for (const s of stops.reverse()) await s().catch(() => {});
    await B?.stop();
    for (const p of [A, boot]) await p?.stop();
    rmSync(base, { recursive: true, force: true });
  });

  /**
   * One restart of B on a read-only data directory: `files` also makes the files read-only (as a
   * read-only mount does), otherwise only the directories are (SQLite then cannot create its -shm).
   */
  async function readOnlyRound(files: boolean, newCaller: string, trustedBefore: string[]): Promise<void> {
    await B?.stop();
    setTreeWritable(dirB, false, files);
    assert.equal(statSync(dirB).mode & 0o777, 0o500);
    B = await startUnprivilegedAdapter(boot.spec, dirB, '127.0.0.1:0');
    const b = B;
    // bob's registration was kept in bindings.sqlite and read although the file cannot be opened for writing.
    assert.equal((await phones.get('bob').register(peer(b.sip))).status, 200);
    // A caller B has never seen: its key is trusted in memory, the call succeeds.
    const caller = await phones.add(newCaller);
    assert.equal((await caller.register(peer(A.sip))).status, 200);
    const call = await caller.invite(`sip:bob@${A.sip}`, peer(A.sip));
    assert.equal(call.redirectedTo, phones.get('bob').contactUri);
    const again = await phones.get('alice').invite(`sip:bob@${A.sip}`, peer(A.sip));
    assert.equal(again.redirectedTo, phones.get('bob').contactUri);
    const faults = b
      .stderr()
      .split('\n')
      .filter((l) => l.includes('trust file not written'));
    assert.equal(faults.length, 1, b.stderr());
    const fault = JSON.parse(faults[0]);
    assert.equal(fault.file, join(dirB, 'trust.sqlite'));
    assert.equal(fault.errno, 'EACCES');
    assert.deepEqual(trustedNames(join(dirB, 'trust.sqlite')), trustedBefore, 'nothing written meanwhile');

    // The directory is writable again: the trust file catches up without a restart.
    setTreeWritable(dirB, true);
    await eventually('trust file written', () => /trust file writable again/.test(b.stderr()), 30_000, b.stderr);
    assert.deepEqual(trustedNames(join(dirB, 'trust.sqlite')), [...trustedBefore, newCaller].sort());
    const last = await caller.invite(`sip:bob@${A.sip}`, peer(A.sip));
    assert.equal(last.redirectedTo, phones.get('bob').contactUri);
  }

  it('starts on a read-only mount-like directory, keeps calls working, logs the fault, writes once writable', async () => {
    await readOnlyRound(true, 'dave', ['alice', 'bob']);
  });

  it('the same with only the directories read-only (SQLite cannot create its -shm file)', async () => {
    await readOnlyRound(false, 'ivy', ['alice', 'bob', 'dave']);
  });

  it('a disk that fills up while the adapter runs: calls keep working, the fault is logged, the file catches up', async (t) => {
    const dirC = join(base, 'C');
    mkdirSync(dirC);
    if (!mountTinyTmpfs(dirC, '4m')) return t.skip('needs root to mount a tiny tmpfs');
    stops.push(async () => unmount(dirC));
    const C = await startAdapterProc(boot.spec, dirC);
    stops.push(() => C.stop());
    const erin = await phones.add('erin');
    assert.equal((await erin.register(peer(C.sip))).status, 200);
    assert.equal((await phones.get('alice').invite(`sip:erin@${A.sip}`, peer(A.sip))).redirectedTo, erin.contactUri);
    const filler = fillDisk(dirC);
    // New callers of erin: C learns their keys while its disk is full; no call fails for it.
    for (const name of ['frank', 'gina', 'hugo']) {
      const p = await phones.add(name);
      assert.equal((await p.register(peer(A.sip))).status, 200);
      const call = await p.invite(`sip:erin@${A.sip}`, peer(A.sip));
      assert.equal(call.redirectedTo, erin.contactUri, `${name}'s call`);
    }
    const faults = C.stderr()
      .split('\n')
      .filter((l) => l.includes('trust file not written'));
    assert.equal(faults.length, 1, C.stderr());
    assert.equal(JSON.parse(faults[0]).errno, 'ENOSPC');
    freeDisk(filler);
    await eventually('trust file written', () => /trust file writable again/.test(C.stderr()), 30_000, C.stderr);
    const names = trustedNames(join(dirC, 'trust.sqlite'));
    for (const n of ['frank', 'gina', 'hugo']) assert.ok(names.includes(n), `${n} in ${names}`);
  });
});
