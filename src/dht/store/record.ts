import { fail, ok, type Result } from '../../util/errors.ts';
import { isRingId } from './ring-id.ts';

/**
 * One DHT record. Times are wall-clock ms from the injected clock so records
 * keep their meaning when they move between nodes.
 */
export interface DhtRecord {
  key: string;
  value: Uint8Array | string;
  /** When the publisher created this version (wall ms). */
  created: number;
  /** Lifetime from `created`, ms. */
  ttlMs: number;
  /** Publisher's version counter; breaks ties between equal `created`. */
  seq: number;
  /** Ring id of the node that put it (the one that republishes it). */
  publisher?: string;
}

export const MAX_KEY_CHARS = 512;

export function recordSize(r: DhtRecord): number {
  const v = typeof r.value === 'string' ? Buffer.byteLength(r.value, 'utf8') : r.value.length;
  return Buffer.byteLength(r.key, 'utf8') + v + 32;
}

export function expiresAt(r: DhtRecord): number {
  return r.created + r.ttlMs;
}

/** Shape check for a record that arrived from the network: a clean copy, or why it is not one. */
export function parseRecord(x: unknown): Result<DhtRecord> {
  if (typeof x !== 'object' || x === null) return fail('record: not an object');
  const o = x as Record<string, unknown>;
  if (typeof o.key !== 'string' || o.key.length === 0 || o.key.length > MAX_KEY_CHARS) return fail('record: bad key');
  if (typeof o.value !== 'string' && !(o.value instanceof Uint8Array)) return fail('record: bad value');
  if (typeof o.created !== 'number' || !Number.isFinite(o.created)) return fail('record: bad created');
  if (typeof o.ttlMs !== 'number' || !Number.isFinite(o.ttlMs) || o.ttlMs <= 0) return fail('record: bad ttlMs');
  if (typeof o.seq !== 'number' || !Number.isSafeInteger(o.seq) || o.seq < 0) return fail('record: bad seq');
  if (o.publisher !== undefined && !isRingId(o.publisher)) return fail('record: bad publisher');
  const r: DhtRecord = { key: o.key, value: o.value, created: o.created, ttlMs: o.ttlMs, seq: o.seq };
  if (o.publisher !== undefined) r.publisher = o.publisher as string;
  return ok(r);
}
