import type { DhtRecord } from './record.ts';

/**
 * A validator per key namespace, after the key-value checkers of seed 003
 * section 4.5: the application decides which records may be stored and, of
 * two records for one key, which one wins. The namespace of `/pk/alice` is
 * `pk`; keys that do not start with `/` (`bob`, `bob.3`) use the default.
 */
export interface RecordValidator {
  /** null when the record may be stored, else why not. */
  validate(record: DhtRecord, nowWall: number): string | null;
  /** The record that wins between two valid records for the same key. */
  select(a: DhtRecord, b: DhtRecord): DhtRecord;
  /**
   * The latest wall time a valid record may live to, when its signed content
   * says so: `created` and `ttlMs` travel unsigned, so the store cuts a
   * record's lifetime down to this bound (record-store.ts put).
   */
  expiresBy?(record: DhtRecord): number;
}

export function namespaceOf(key: string): string {
  if (!key.startsWith('/')) return '';
  const end = key.indexOf('/', 1);
  return end < 0 ? '' : key.slice(1, end);
}

/** Newer `created` wins, then higher `seq`, then the larger value bytes (so every replica picks the same). */
export function newestWins(a: DhtRecord, b: DhtRecord): DhtRecord {
  if (a.created !== b.created) return a.created > b.created ? a : b;
  if (a.seq !== b.seq) return a.seq > b.seq ? a : b;
  return compareValues(a.value, b.value) >= 0 ? a : b;
}

function compareValues(a: Uint8Array | string, b: Uint8Array | string): number {
  const x = typeof a === 'string' ? Buffer.from(a, 'utf8') : Buffer.from(a.buffer, a.byteOffset, a.length);
  const y = typeof b === 'string' ? Buffer.from(b, 'utf8') : Buffer.from(b.buffer, b.byteOffset, b.length);
  return Buffer.compare(x, y);
}

/** Accepts any well-formed record that has not expired and does not claim a lifetime above `maxTtlMs`. */
export function defaultValidator(maxTtlMs = 7 * 24 * 3600_000, maxClockSkewMs = 5 * 60_000): RecordValidator {
  return {
    validate(r, now) {
      if (r.ttlMs > maxTtlMs) return `ttl above ${maxTtlMs} ms`;
      if (r.created > now + maxClockSkewMs) return 'created in the future';
      if (r.created + r.ttlMs <= now) return 'expired';
      return null;
    },
    select: newestWins,
  };
}

/** First-come: once a key holds a record, only records with the same value may refresh it. */
export function firstWriterValidator(base: RecordValidator = defaultValidator()): RecordValidator {
  return {
    validate: base.validate,
    select(a, b) {
      if (compareValues(a.value, b.value) === 0) return newestWins(a, b);
      return a.created <= b.created ? a : b;
    },
  };
}
