/**
 * The operator's HTTP listener of a daemon: Prometheus exposition
 * (/metrics), liveness (/healthz), readiness (/readyz), the live dashboard
 * (/, its two assets and the server-sent events at /events), the JSON state
 * `secp2psip status` prints (/api/state), and for a bootstrap its
 * administration (/api/admin/*, bearer token only).
 *
 * One class for both `--metrics` and `--http`: a metrics-only listener
 * serves /metrics and the health checks; a dashboard listener serves
 * everything. The listener is up before the daemon has joined, so /readyz
 * can say "not yet" and why; `attach` hands it the running daemon.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { formatHostPort, type HostPort } from '../util/args.ts';
import { type Logger, silentLogger } from '../util/log.ts';
import type { PromMetrics } from './prom-metrics.ts';
import type { DaemonState, Readiness } from './state.ts';
import type { OpsTarget } from './targets.ts';

export interface OpsServerOptions extends HostPort {
  role: string;
  /** Serve /metrics from this registry. */
  metrics?: PromMetrics;
  /** Serve the dashboard, /events and /api/*. */
  dashboard?: boolean;
  /** Bearer token of /api/admin/* (absent: administration is off). */
  adminToken?: string;
  logger?: Logger;
  /** Period of the dashboard's live updates (ms, default 1000). */
  pushMs?: number;
}

const ASSETS: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/dashboard.js': { file: 'dashboard.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard.css': { file: 'dashboard.css', type: 'text/css; charset=utf-8' },
};

/** Every asset from the package itself (no CDN, no build step), read once. */
function loadAssets(): Map<string, { body: Buffer; type: string }> {
  const out = new Map<string, { body: Buffer; type: string }>();
  for (const [path, a] of Object.entries(ASSETS))
    out.set(path, { body: readFileSync(new URL(`./dashboard/${a.file}`, import.meta.url)), type: a.type });
  return out;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest();

/** Largest request body read (a release names one user). */
const MAX_BODY = 4096;

export class OpsServer {
  private target: OpsTarget | undefined;
  private readonly clients = new Set<ServerResponse>();
  private pushTimer: NodeJS.Timeout | undefined;
  private readonly assets: Map<string, { body: Buffer; type: string }> | undefined;
  private readonly log: Logger;
  private readonly tokenHash: Buffer | undefined;

  private constructor(
    private readonly server: Server,
    private readonly o: OpsServerOptions,
  ) {
    this.log = (o.logger ?? silentLogger).child({ component: 'ops-http' });
    this.assets = o.dashboard ? loadAssets() : undefined;
    this.tokenHash = o.adminToken === undefined ? undefined : sha256(o.adminToken);
    server.on('request', (req, res) => {
      this.route(req, res).catch((e: unknown) => {
        this.log.warn({ err: (e as Error).message, path: req.url }, 'ops request failed');
        if (!res.headersSent) this.json(res, 500, { error: 'internal error' });
        else res.end();
      });
    });
  }

  static async listen(o: OpsServerOptions): Promise<OpsServer> {
    const server = createServer({ requestTimeout: 10_000, headersTimeout: 10_000 });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.port, o.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return new OpsServer(server, o);
  }

  /** host:port actually bound. */
  get address(): string {
    const a = this.server.address() as AddressInfo;
    return formatHostPort({ host: a.address, port: a.port });
  }

  get url(): string {
    return `http://${this.address}/`;
  }

  attach(target: OpsTarget): void {
    this.target = target;
  }

  async close(): Promise<void> {
    clearInterval(this.pushTimer);
    for (const c of this.clients) c.end();
    this.clients.clear();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private async readiness(): Promise<Readiness> {
    return this.target ? this.target.ready() : { ok: false, reason: 'starting' };
  }

  async state(): Promise<DaemonState> {
    const ready = await this.readiness();
    if (this.target) return this.target.state(ready);
    return { role: this.o.role, id: '', addr: '', at: Date.now(), ready };
  }

  private json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
    res.end(text);
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const browserPath =
      path === '/' || path.startsWith('/api/') || path === '/events' || path.startsWith('/dashboard.');
    if (browserPath && !hostAllowed(req.headers.host)) {
      // DNS rebinding: a web page whose name now resolves to this listener must not read the daemon's state.
      // (Scrapers and health checkers may use any name: /metrics, /healthz and /readyz are not checked.)
      this.json(res, 421, { error: 'Host must be an IP address or localhost' });
      return;
    }
    const isAdmin = path.startsWith('/api/admin/');
    const allowed = path === '/api/admin/release' ? 'POST' : 'GET, HEAD';
    if (!allowed.split(', ').includes(req.method ?? '')) {
      this.json(res, 405, { error: `method ${req.method} not allowed on ${path}` }, { allow: allowed });
      return;
    }
    if (path === '/healthz') return this.json(res, 200, { status: 'alive', role: this.o.role });
    if (path === '/readyz') {
      const r = await this.readiness();
      return this.json(res, r.ok ? 200 : 503, { ready: r.ok, reason: r.reason, role: this.o.role });
    }
    if (path === '/metrics' && this.o.metrics) {
      const body = await this.o.metrics.exposition();
      res.writeHead(200, { 'content-type': this.o.metrics.contentType });
      res.end(body);
      return;
    }
    if (this.assets) {
      const asset = this.assets.get(path);
      if (asset) {
        res.writeHead(200, { 'content-type': asset.type, 'cache-control': 'no-cache' });
        res.end(asset.body);
        return;
      }
      if (path === '/events') return this.subscribe(res);
      if (path === '/api/state') return this.json(res, 200, await this.state());
      if (isAdmin) return this.admin(req, res, path);
    }
    this.json(res, 404, { error: `no ${path} here` });
  }

  /** Bearer token (RFC 6750 2.1) compared in constant time; 401 with a challenge otherwise. */
  private authorized(req: IncomingMessage, res: ServerResponse): boolean {
    const m = /^Bearer ([\x21-\x7e]+)$/.exec(req.headers.authorization ?? '');
    if (this.tokenHash && m && timingSafeEqual(sha256(m[1]), this.tokenHash)) return true;
    const why = this.tokenHash ? 'a valid bearer token is required' : 'administration is off (no --admin-token-file)';
    this.json(res, 401, { error: why }, { 'www-authenticate': 'Bearer realm="secp2psip"' });
    return false;
  }

  private async admin(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    if (!this.authorized(req, res)) return;
    const admin = this.target?.admin;
    if (!admin) return this.json(res, 404, { error: `a ${this.o.role} has no user administration` });
    if (path === '/api/admin/users') return this.json(res, 200, { users: admin.users() });
    if (path === '/api/admin/release') {
      const body = await readBody(req);
      if (body === undefined) return this.json(res, 413, { error: `body larger than ${MAX_BODY} bytes` });
      let name: unknown;
      try {
        name = (JSON.parse(body) as { name?: unknown }).name;
      } catch {
        return this.json(res, 400, { error: 'body must be JSON: {"name": "<user>"}' });
      }
      if (typeof name !== 'string' || name === '') return this.json(res, 400, { error: 'name is required' });
      if (!admin.release(name)) return this.json(res, 404, { error: `'${name}' is not registered here` });
      this.log.info({ user: name }, 'name released over the admin API');
      return this.json(res, 200, { released: name });
    }
    this.json(res, 404, { error: `no ${path} here` });
  }

  /** Server-sent events: the state now, then every pushMs while someone listens. */
  private async subscribe(res: ServerResponse): Promise<void> {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    this.clients.add(res);
    res.on('close', () => {
      this.clients.delete(res);
      if (this.clients.size === 0) {
        clearInterval(this.pushTimer);
        this.pushTimer = undefined;
      }
    });
    res.write(`data: ${JSON.stringify(await this.state())}\n\n`);
    this.pushTimer ??= setInterval(() => {
      this.push().catch((e: unknown) => this.log.warn({ err: (e as Error).message }, 'dashboard push failed'));
    }, this.o.pushMs ?? 1000);
    this.pushTimer.unref();
  }

  private async push(): Promise<void> {
    if (this.clients.size === 0) return;
    const line = `data: ${JSON.stringify(await this.state())}\n\n`;
    for (const c of this.clients) c.write(line);
  }
}

/**
 * The Host a browser sends names what it thinks it is talking to: an address or localhost is the operator's
 * own; any other name may be a hostile site's, rebound to this address (absent: not a browser, allowed).
 */
export function hostAllowed(host: string | undefined): boolean {
  if (host === undefined) return true;
  const name = host.replace(/:\d+$/, '');
  return name === 'localhost' || /^\d{1,3}(\.\d{1,3}){3}$/.test(name) || /^\[[0-9a-fA-F:.]+\]$/.test(name);
}

/** The request body, or undefined when it is larger than MAX_BODY (the rest is read and dropped, then 413). */
function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY) chunks.push(c);
    });
    req.on('end', () => resolve(size > MAX_BODY ? undefined : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
