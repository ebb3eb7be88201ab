/**
 * The connections of a registry shared on PostgreSQL (registry-pg.ts): a
 * pool, what counts as "the database cannot be used right now", and the
 * server to use when a connection string names several (a primary and its
 * standbys, libpq's multi-host form). A failure to reach the database is
 * REGISTRY_UNAVAILABLE, logged once per outage with the server's address;
 * broken connections are dropped, and the next request opens new ones, so
 * the registry recovers by itself when the database is back. With several
 * servers, a failure also starts a search for the one that takes writes now
 * (a standby promoted after the primary died), and the pool moves there.
 */
import pg from 'pg';
import { OverlayError } from '../util/errors.ts';
import { type Logger, silentLogger } from '../util/log.ts';

/** Connection strings this registry takes. */
export const PG_URL_RE = /^postgres(ql)?:\/\//;

/** The connection string without its password, for logs and messages. */
export function redactUrl(url: string): string {
  return url.replace(/^(postgres(?:ql)?:\/\/[^:/@]*):[^@/]*@/, '$1:***@');
}

/** Socket errors that mean the database is not reachable (not a bad query). */
const NET_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);
/**
 * A connection string for one host each, from libpq's multi-host form
 * (`postgres://user@h1:5432,h2:5432/db?target_session_attrs=read-write`), which the `pg` client does not
 * take. `target_session_attrs` is dropped: the registry always needs the server that takes writes, and
 * finds it itself (PgRegistry.followPrimary).
 */
export function splitHosts(url: string): string[] {
  const m = /^(postgres(?:ql)?:\/\/)(?:([^@/?#]*)@)?([^/?#]*)(\/[^?#]*)?(\?[^#]*)?$/.exec(url);
  if (!m) return [url];
  const [, scheme, user, hosts, path = '', query = ''] = m;
  const params = new URLSearchParams(query.slice(1));
  params.delete('target_session_attrs');
  const q = params.toString();
  return hosts.split(',').map((h) => `${scheme}${user !== undefined ? `${user}@` : ''}${h}${path}${q ? `?${q}` : ''}`);
}

/** SQLSTATEs of a server going away or not taking writes (a standby after a failover). */
const DOWN_STATES = new Set(['57P01', '57P02', '57P03', '53300', '25006']);
/** SQLSTATEs after which the transaction is simply run again. */
export const RETRY_STATES = new Set(['40001', '40P01']);

/** True when `e` says the database cannot be used right now (rather than a mistake in a query). */
export function isUnavailable(e: unknown): boolean {
  const err = e as { code?: string; message?: string };
  const code = err?.code ?? '';
  if (NET_ERRORS.has(code) || DOWN_STATES.has(code) || code.startsWith('08')) return true;
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Query read timeout|Connection is closed|not queryable|after calling end on the pool/i.test(
    err?.message ?? '',
  );
}

/** Thrown inside a transaction to roll it back and answer `value`. */
export class TxAnswer<V> extends Error {
  constructor(readonly value: V) {
    super('answered');
  }
}
/** Thrown inside a transaction to roll it back and run it again (a concurrent insert of the same key won). */
export class TxRunAgain extends Error {}

export interface PgConnectionOptions {
  logger?: Logger;
  /** Connections per bootstrap (default 8). */
  maxConnections?: number;
  /** How long to wait for a connection, and for a statement, before answering "unavailable" (ms, default 2000). */
  timeoutMs?: number;
}

export class PgConnections {
  readonly url: string;
  /** One connection string per server of a multi-host string (one for a plain one). */
  private readonly hosts: string[];
  /** The server in use, an index into `hosts`. */
  private current = 0;
  private pool: pg.Pool;
  private readonly o: PgConnectionOptions;
  private readonly log: Logger;
  /** Whether the last request reached the database (outages and recoveries are logged once each). */
  private reachable = true;
  /** A search for the server that takes writes, while one runs (see followPrimary). */
  private following?: Promise<void>;

  constructor(url: string, o: PgConnectionOptions) {
    this.url = url;
    this.o = o;
    this.hosts = splitHosts(url);
    this.log = (o.logger ?? silentLogger).child({ component: 'registry-pg' });
    this.pool = this.poolFor(this.hosts[0]);
  }

  private get timeoutMs(): number {
    return this.o.timeoutMs ?? 2000;
  }

  private poolFor(url: string): pg.Pool {
    const pool = new pg.Pool({
      connectionString: url,
      max: this.o.maxConnections ?? 8,
      connectionTimeoutMillis: this.timeoutMs,
      idleTimeoutMillis: 10_000,
      query_timeout: this.timeoutMs * 2,
      statement_timeout: this.timeoutMs * 2,
      keepAlive: true,
    });
    // An idle connection the server closed (restart, failover) is dropped by the pool; without a
    // listener the error would end the process.
    pool.on('error', (e) => this.down(e));
    return pool;
  }

  /** The first server of `hosts` that takes writes (not a standby), or undefined when none answers so. */
  private async findPrimary(): Promise<number | undefined> {
    for (const [i, url] of this.hosts.entries()) {
      const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: this.timeoutMs });
      c.on('error', () => {});
      try {
        await c.connect();
        const r = await c.query<{ standby: boolean }>('SELECT pg_is_in_recovery() AS standby');
        if (r.rows[0]?.standby === false) return i;
      } catch {
        // Down or refusing: try the next.
      } finally {
        await c.end().catch(() => {});
      }
    }
    return undefined;
  }

  /**
   * Several servers (a primary and standbys): after a failure, look for the one that takes writes now (a
   * standby promoted after the primary died) and move the pool there. One search at a time; the request
   * that failed is answered "unavailable" and the phone comes back.
   */
  private followPrimary(): void {
    if (this.hosts.length < 2 || this.following) return;
    this.following = (async () => {
      const i = await this.findPrimary();
      if (i === undefined || i === this.current) return;
      const old = this.pool;
      this.pool = this.poolFor(this.hosts[i]);
      this.current = i;
      this.log.warn({ server: redactUrl(this.hosts[i]) }, 'registry database: the server taking writes changed');
      await old.end().catch(() => {});
    })().finally(() => {
      this.following = undefined;
    });
  }

  /**
   * Before first use: with several servers, move to the one that takes writes; then run `first` on one
   * connection (the schema's migration). Throws REGISTRY_UNAVAILABLE with the cause when the database
   * cannot be used, and `first`'s own OverlayErrors as they are.
   */
  async start(first: (c: pg.PoolClient) => Promise<void>): Promise<void> {
    try {
      if (this.hosts.length > 1) {
        const i = await this.findPrimary();
        if (i === undefined) throw new Error(`none of its ${this.hosts.length} servers takes writes`);
        await this.pool.end();
        this.current = i;
        this.pool = this.poolFor(this.hosts[i]);
      }
      const client = await this.pool.connect();
      const ignore = () => {};
      client.on('error', ignore);
      try {
        await first(client);
      } finally {
        client.removeListener('error', ignore);
        client.release();
      }
    } catch (e) {
      await this.pool.end().catch(() => {});
      if (e instanceof OverlayError) throw e;
      throw new OverlayError(
        'REGISTRY_UNAVAILABLE',
        `cannot use the registry database ${redactUrl(this.url)}: ${(e as Error).message}`,
      );
    }
  }

  private down(e: unknown): void {
    if (!this.reachable) return;
    this.reachable = false;
    this.log.warn({ err: (e as Error)?.message }, 'registry database unreachable; registrations answered 503');
  }

  private up(): void {
    if (this.reachable) return;
    this.reachable = true;
    this.log.info('registry database reachable again');
  }

  /** The error a caller sees for a database failure: REGISTRY_UNAVAILABLE, or the error itself for a bug. */
  private fail(e: unknown): Error {
    if (e instanceof OverlayError) return e;
    if (isUnavailable(e)) {
      // The database's address and error stay in this bootstrap's log; the phone is told only to come back.
      this.down(e);
      this.followPrimary();
      return new OverlayError('REGISTRY_UNAVAILABLE');
    }
    return e as Error;
  }

  async query<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<pg.QueryResult<R>> {
    try {
      const r = await this.pool.query<R>(sql, params);
      this.up();
      return r;
    } catch (e) {
      throw this.fail(e);
    }
  }

  /** Run `fn` in one transaction; run again after a conflict or deadlock, at most a few times. */
  async tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      let client: pg.PoolClient;
      try {
        client = await this.pool.connect();
      } catch (e) {
        throw this.fail(e);
      }
      let broken: Error | undefined;
      // A checked-out connection has no listener of the pool's: a server that vanishes mid-transaction
      // would otherwise be an uncaught error (the query itself fails too, and is answered below).
      const onError = (e: Error) => {
        broken = e;
      };
      client.on('error', onError);
      try {
        await client.query('BEGIN');
        const out = await fn(client);
        await client.query('COMMIT');
        this.up();
        return out;
      } catch (e) {
        if (isUnavailable(e)) broken = e as Error;
        else await client.query('ROLLBACK').catch((r: Error) => (broken = r));
        if (e instanceof TxAnswer) return e.value as T;
        const again = e instanceof TxRunAgain || RETRY_STATES.has((e as { code?: string }).code ?? '');
        if (!again || attempt >= 5) throw this.fail(e);
      } finally {
        // A connection that failed is destroyed rather than handed to the next request.
        client.removeListener('error', onError);
        client.release(broken);
      }
    }
  }

  async close(): Promise<void> {
    await this.following?.catch(() => {});
    await this.pool.end().catch(() => {});
  }
}
