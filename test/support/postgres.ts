/**
 * A private PostgreSQL cluster for tests: `initdb` on a temporary directory
 * owned by the `postgres` user, trust authentication on loopback, a free TCP
 * port on 127.0.0.1 and the unix socket inside the temporary directory, so
 * nothing is shared with any other cluster on the machine. One cluster per
 * test file; `stop`/`start` take it down and up again on the same port (a
 * database outage), `destroy` removes it.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  appendFileSync,
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../sip/e2e-helpers.ts';

export const PG_BIN = '/usr/lib/postgresql/15/bin';

/** Why PostgreSQL tests cannot run here, or undefined when they can. */
export function postgresMissing(): string | undefined {
  if (!existsSync(join(PG_BIN, 'initdb')) || !existsSync(join(PG_BIN, 'pg_ctl')))
    return `PostgreSQL 15 binaries not found in ${PG_BIN} (Debian package postgresql-15)`;
  if (process.getuid?.() !== 0) return 'needs root to run initdb and pg_ctl as the postgres user';
  if (spawnSync('id', ['-u', 'postgres']).status !== 0) return 'no system user postgres';
  return undefined;
}

function uidGid(user: string): { uid: number; gid: number } {
  const uid = Number(execFileSync('id', ['-u', user]).toString().trim());
  const gid = Number(execFileSync('id', ['-g', user]).toString().trim());
  return { uid, gid };
}

/** Run a PostgreSQL program as the postgres user; throws with its output when it fails. */
function asPostgres(program: string, args: string[], timeoutMs = 60_000): string {
  const r = spawnSync('runuser', ['-u', 'postgres', '--', join(PG_BIN, program), ...args], {
    timeout: timeoutMs,
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`${program} ${args.join(' ')} failed: ${r.stderr || r.stdout || r.error}`);
  return r.stdout;
}

export class TestPostgres {
  readonly dir: string;
  readonly port: number;
  private readonly data: string;
  private readonly sockets: string;
  private running = false;

  private constructor(dir: string, port: number) {
    this.dir = dir;
    this.port = port;
    this.data = join(dir, 'data');
    this.sockets = join(dir, 'sock');
  }

  /**
   * initdb + start on a free port. Tests run without fsync (durability is not what they check);
   * `durable` keeps PostgreSQL's defaults (fsync, synchronous commit), for benchmarks.
   */
  static async start(o: { durable?: boolean } = {}): Promise<TestPostgres> {
    const dir = mkdtempSync(join(tmpdir(), 'secp2psip-pg-'));
    const { uid, gid } = uidGid('postgres');
    chmodSync(dir, 0o755);
    const pg = new TestPostgres(dir, await freePort());
    mkdirSync(pg.data, { mode: 0o700 });
    mkdirSync(pg.sockets, { mode: 0o755 });
    chownSync(pg.data, uid, gid);
    chownSync(pg.sockets, uid, gid);
    asPostgres('initdb', ['-D', pg.data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync'], 120_000);
    // Loopback only, and the socket in our directory: nothing shared with another cluster.
    const fast = o.durable ? [] : ['fsync = off', 'synchronous_commit = off', 'full_page_writes = off'];
    writeFileSync(
      join(pg.data, 'postgresql.auto.conf'),
      [
        `listen_addresses = '127.0.0.1'`,
        `port = ${pg.port}`,
        `unix_socket_directories = '${pg.sockets}'`,
        ...fast,
        'max_connections = 100',
        'shared_buffers = 32MB',
        '',
      ].join('\n'),
    );
    chownSync(join(pg.data, 'postgresql.auto.conf'), uid, gid);
    pg.up();
    return pg;
  }

  /**
   * A streaming standby of `primary` (pg_basebackup -R), on a port of its own. The primary must have
   * been started `durable` (a base backup needs full-page writes).
   */
  static async replicaOf(primary: TestPostgres): Promise<TestPostgres> {
    const dir = mkdtempSync(join(tmpdir(), 'secp2psip-pg-standby-'));
    const { uid, gid } = uidGid('postgres');
    chmodSync(dir, 0o755);
    const pg = new TestPostgres(dir, await freePort());
    mkdirSync(pg.data, { mode: 0o700 });
    mkdirSync(pg.sockets, { mode: 0o755 });
    chownSync(pg.data, uid, gid);
    chownSync(pg.sockets, uid, gid);
    asPostgres(
      'pg_basebackup',
      [
        '-h',
        '127.0.0.1',
        '-p',
        String(primary.port),
        '-U',
        'postgres',
        '-D',
        pg.data,
        '-R',
        '-X',
        'stream',
        '--checkpoint=fast',
        '--no-sync',
      ],
      120_000,
    );
    // The copied settings name the primary's port and socket directory; the last line of a setting wins.
    appendFileSync(
      join(pg.data, 'postgresql.auto.conf'),
      `port = ${pg.port}\nunix_socket_directories = '${pg.sockets}'\n`,
    );
    pg.up();
    return pg;
  }

  /** Promote a standby to primary (it takes writes from then on). */
  promote(): void {
    asPostgres('pg_ctl', ['-D', this.data, '-w', '-t', '60', 'promote']);
  }

  /** Stop without a shutdown checkpoint, as a crashed server. */
  kill(): void {
    if (!this.running) return;
    asPostgres('pg_ctl', ['-D', this.data, '-m', 'immediate', '-w', '-t', '60', 'stop']);
    this.running = false;
  }

  /** The connection string of a database of this cluster (user postgres, trust auth). */
  url(db = 'postgres'): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${db}`;
  }

  /** Make a fresh database and return its connection string. */
  createDatabase(name: string): string {
    asPostgres('createdb', ['-h', this.sockets, '-p', String(this.port), '-U', 'postgres', name]);
    return this.url(name);
  }

  /** Run SQL through psql on a database (for checks a test makes behind the program's back). */
  psql(db: string, sql: string): string {
    return asPostgres('psql', ['-h', this.sockets, '-p', String(this.port), '-U', 'postgres', '-d', db, '-Atc', sql]);
  }

  private up(): void {
    asPostgres('pg_ctl', ['-D', this.data, '-l', join(this.data, 'server.log'), '-w', '-t', '60', 'start']);
    this.running = true;
  }

  /** Start again after stop (same port, same data). */
  restart(): void {
    if (!this.running) this.up();
  }

  /** Stop at once (fast mode: open sessions are cut, as when a database server goes away). */
  stop(): void {
    if (!this.running) return;
    asPostgres('pg_ctl', ['-D', this.data, '-m', 'fast', '-w', '-t', '60', 'stop']);
    this.running = false;
  }

  destroy(): void {
    try {
      this.stop();
    } catch {
      // Removed below either way.
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
