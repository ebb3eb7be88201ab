/**
 * How an adapter (or a peer bootstrap) names a bootstrap server on the
 * command line, and how it learns the bootstrap's node key, which it must
 * hold before trusting anything signed by it (admissions, ring writes):
 *
 *   <64 hex>@host:port   the bootstrap's Ed25519 node key itself: pinned, no fetch
 *   <40 hex>@host:port   SHA-1 of that key (what `secp2psip bootstrap` prints):
 *                        the key is read from the TLS handshake and must hash to it
 *   host:port            trust on first use: the key seen on the first start is
 *                        saved in `<data>/bootstrap.json` and a different key later
 *                        is refused (delete the file to accept a new bootstrap key)
 *
 * An adapter also keeps every bootstrap of the set, as the first one that
 * admits it lists them, in `<data>/bootstraps.json`: on later starts it
 * fails over to them when its configured bootstrap does not answer, and a
 * hash or first-use spec naming one of them needs no handshake to learn the
 * key. The list comes from a bootstrap whose key was checked (TLS, pinned).
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nodeIdFromKey } from '../identity/fingerprint.ts';
import { formatHostPort, parseHostPort } from '../util/args.ts';
import { fail, isOverlayError, OverlayError, ok, type Result } from '../util/errors.ts';
import { type Logger, silentLogger } from '../util/log.ts';
import type { BootstrapInfo } from './messages.ts';
import { bytesEqual } from '../util/bytes.ts';

export interface BootstrapSpec {
  addr: string;
  host: string;
  port: number;
  key?: Uint8Array;
  hash?: string;
}

export function parseBootstrapSpec(s: string): Result<BootstrapSpec> {
  const at = s.indexOf('@');
  const pin = at >= 0 ? s.slice(0, at).toLowerCase() : undefined;
  let hp: { host: string; port: number };
  try {
    hp = parseHostPort(at >= 0 ? s.slice(at + 1) : s, 'bootstrap address');
  } catch (e) {
    return fail(isOverlayError(e) && e.reason ? e.reason : (e as Error).message);
  }
  if (hp.port === 0) return fail('bootstrap port must not be 0');
  const base = { addr: formatHostPort(hp), host: hp.host, port: hp.port };
  if (pin === undefined) return ok(base);
  if (/^[0-9a-f]{64}$/.test(pin)) return ok({ ...base, key: new Uint8Array(Buffer.from(pin, 'hex')) });
  if (/^[0-9a-f]{40}$/.test(pin)) return ok({ ...base, hash: pin });
  return fail(`expected <64-hex key>@host:port, <40-hex hash>@host:port or host:port, got '${s}'`);
}

/** `<hash>@host:port`: what a bootstrap prints for adapters to use. */
export function bootstrapSpecOf(info: BootstrapInfo): string {
  return `${nodeIdFromKey(info.key)}@${info.addr}`;
}

interface PinFile {
  addr: string;
  key: string;
}

/**
 * The bootstrap's key for `spec`: given, or fetched with `fetchKey` (a TLS
 * handshake) and checked against the hash or the key pinned in `dataDir`.
 */
export async function resolveBootstrap(
  spec: BootstrapSpec,
  fetchKey: (host: string, port: number) => Promise<Uint8Array>,
  dataDir?: string,
): Promise<BootstrapInfo> {
  if (spec.key) return { addr: spec.addr, key: spec.key };
  // Known from the set a bootstrap listed before: no handshake needed (the configured one may be down).
  const known = dataDir ? loadBootstrapSet(dataDir).find((b) => b.addr === spec.addr) : undefined;
  if (known && (spec.hash ? nodeIdFromKey(known.key) === spec.hash : pinnedKey(dataDir, spec.addr, known.key)))
    return known;
  const pinPath = dataDir ? join(dataDir, 'bootstrap.json') : undefined;
  let pinned: Uint8Array | undefined;
  if (!spec.hash && pinPath && existsSync(pinPath)) {
    try {
      const p = JSON.parse(readFileSync(pinPath, 'utf8')) as PinFile;
      if (p.addr === spec.addr && /^[0-9a-f]{64}$/.test(p.key)) pinned = new Uint8Array(Buffer.from(p.key, 'hex'));
    } catch {
      throw new OverlayError('BAD_CONFIG', `${pinPath} is unreadable; delete it to pin the bootstrap key again`);
    }
  }
  const key = await fetchKey(spec.host, spec.port);
  if (spec.hash && nodeIdFromKey(key) !== spec.hash)
    throw new OverlayError(
      'IDENTITY_BAD_KEY',
      `bootstrap at ${spec.addr} presents a key that does not hash to ${spec.hash}`,
    );
  if (pinned && !bytesEqual(pinned, key))
    throw new OverlayError(
      'IDENTITY_BAD_KEY',
      `bootstrap at ${spec.addr} presents another key than the one pinned in ${pinPath} on first use`,
    );
  if (!spec.hash && !pinned && pinPath) {
    const tmp = `${pinPath}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify({ addr: spec.addr, key: Buffer.from(key).toString('hex') })}\n`, {
      mode: 0o600,
    });
    renameSync(tmp, pinPath);
  }
  return { addr: spec.addr, key };
}

/** True when the first-use pin of `addr` in `dataDir` is `key` (or no pin exists there). */
function pinnedKey(dataDir: string | undefined, addr: string, key: Uint8Array): boolean {
  if (!dataDir) return false;
  const path = join(dataDir, 'bootstrap.json');
  if (!existsSync(path)) return false;
  try {
    const p = JSON.parse(readFileSync(path, 'utf8')) as PinFile;
    return p.addr === addr && p.key === Buffer.from(key).toString('hex');
  } catch {
    return false;
  }
}

const SET_FILE = 'bootstraps.json';

/** The bootstraps of the set kept in `<dataDir>/bootstraps.json`; none when absent or unreadable (logged). */
export function loadBootstrapSet(dataDir: string, log: Logger = silentLogger): BootstrapInfo[] {
  const path = join(dataDir, SET_FILE);
  if (!existsSync(path)) return [];
  try {
    const j = JSON.parse(readFileSync(path, 'utf8')) as { bootstraps?: unknown };
    const list = Array.isArray(j.bootstraps) ? j.bootstraps : [];
    const out: BootstrapInfo[] = [];
    for (const b of list as PinFile[]) {
      if (typeof b?.addr !== 'string' || typeof b.key !== 'string' || !/^[0-9a-f]{64}$/.test(b.key)) continue;
      out.push({ addr: b.addr, key: new Uint8Array(Buffer.from(b.key, 'hex')) });
    }
    return out;
  } catch (e) {
    log.warn({ path, err: (e as Error).message }, 'known bootstrap list unreadable; ignored');
    return [];
  }
}

/** Keep the set for the next start (written whole, then renamed); a failure is logged, never fatal. */
export function saveBootstrapSet(dataDir: string, set: readonly BootstrapInfo[], log: Logger = silentLogger): void {
  const path = join(dataDir, SET_FILE);
  const body = { bootstraps: set.map((b) => ({ addr: b.addr, key: Buffer.from(b.key).toString('hex') })) };
  try {
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(body, null, 2)}\n`, { mode: 0o600 });
    renameSync(tmp, path);
  } catch (e) {
    log.warn({ path, err: (e as Error).message }, 'could not keep the bootstrap list');
  }
}
