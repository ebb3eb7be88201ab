import type { Clock } from '../../util/clock.ts';
import type { ErrorCode } from '../../util/errors.ts';
import { type DhtRecord, expiresAt, recordSize } from './record.ts';
import { inHalfOpen, keyPosition } from './ring-id.ts';
import { defaultValidator, namespaceOf, type RecordValidator } from './validators.ts';

/**
 * A node's local share of the DHT: records with expiry on the injected
 * clock, a validator per namespace, and limits per record and per node.
 * Never throws on bad input: `put` answers with a typed outcome.
 */
export interface RecordStoreInit {
  /** Largest record (key + value + overhead) accepted, bytes (default 64 KiB). */
  maxRecordBytes?: number;
  /** Total bytes a node holds (default 64 MiB). */
  maxBytes?: number;
  /** Total records a node holds (default 1,000,000). */
  maxRecords?: number;
  /** Validators by namespace; '' is the default namespace. */
  validators?: Record<string, RecordValidator>;
}

export type PutOutcome =
  | { ok: true; stored: boolean; record: DhtRecord }
  | {
      ok: false;
      code: Extract<ErrorCode, 'DHT_RECORD_TOO_LARGE' | 'DHT_STORE_FULL' | 'DHT_RECORD_INVALID'>;
      reason: string;
    };

interface Entry {
  rec: DhtRecord;
  pos: string;
  size: number;
}

export class RecordStore {
  private readonly clock: Clock;
  private readonly entries = new Map<string, Entry>();
  private readonly validators: Record<string, RecordValidator>;
  readonly maxRecordBytes: number;
  readonly maxBytes: number;
  readonly maxRecords: number;
  private usedBytes = 0;

  constructor(components: { clock: Clock }, init: RecordStoreInit = {}) {
    this.clock = components.clock;
    this.maxRecordBytes = init.maxRecordBytes ?? 64 * 1024;
    this.maxBytes = init.maxBytes ?? 64 * 1024 * 1024;
    this.maxRecords = init.maxRecords ?? 1_000_000;
    this.validators = { '': defaultValidator(), ...(init.validators ?? {}) };
  }

  get size(): number {
    return this.entries.size;
  }

  get bytes(): number {
    return this.usedBytes;
  }

  validatorFor(key: string): RecordValidator {
    return this.validators[namespaceOf(key)] ?? this.validators[''];
  }

  /** Check a record against its namespace's validator without storing it. */
  check(rec: DhtRecord): string | null {
    const ns = namespaceOf(rec.key);
    const v = this.validators[ns];
    if (!v && ns !== '') return `no validator for namespace '${ns}'`;
    return (v ?? this.validators['']).validate(rec, this.clock.wallNow());
  }

  /** Store `rec` unless it is invalid, too large, or loses against the record already held. */
  put(rec: DhtRecord): PutOutcome {
    const size = recordSize(rec);
    if (size > this.maxRecordBytes)
      return { ok: false, code: 'DHT_RECORD_TOO_LARGE', reason: `${size} bytes > ${this.maxRecordBytes}` };
    const why = this.check(rec);
    if (why !== null) return { ok: false, code: 'DHT_RECORD_INVALID', reason: why };
    const bound = this.validatorFor(rec.key).expiresBy?.(rec);
    if (bound !== undefined && expiresAt(rec) > bound) {
      // A copy whose unsigned created/ttl claim more than its signed content allows lives only that long.
      if (bound <= Math.max(rec.created, this.clock.wallNow()))
        return { ok: false, code: 'DHT_RECORD_INVALID', reason: 'past its signed lifetime' };
      rec = { ...rec, ttlMs: bound - rec.created };
    }
    const old = this.live(rec.key);
    if (old) {
      const winner = this.validatorFor(rec.key).select(old.rec, rec);
      if (winner === old.rec) return { ok: true, stored: false, record: old.rec };
      if (this.usedBytes - old.size + size > this.maxBytes)
        return { ok: false, code: 'DHT_STORE_FULL', reason: 'byte limit' };
      this.usedBytes += size - old.size;
      this.entries.set(rec.key, { rec, pos: old.pos, size });
      return { ok: true, stored: true, record: rec };
    }
    if (this.entries.size >= this.maxRecords) this.sweep();
    if (this.entries.size >= this.maxRecords) return { ok: false, code: 'DHT_STORE_FULL', reason: 'record limit' };
    if (this.usedBytes + size > this.maxBytes) this.sweep();
    if (this.usedBytes + size > this.maxBytes) return { ok: false, code: 'DHT_STORE_FULL', reason: 'byte limit' };
    this.entries.set(rec.key, { rec, pos: keyPosition(rec.key), size });
    this.usedBytes += size;
    return { ok: true, stored: true, record: rec };
  }

  /** The live record for `key`, or undefined (an expired one is dropped on the way). */
  get(key: string): DhtRecord | undefined {
    return this.live(key)?.rec;
  }

  has(key: string): boolean {
    return this.live(key) !== undefined;
  }

  delete(key: string): boolean {
    const e = this.entries.get(key);
    if (!e) return false;
    this.entries.delete(key);
    this.usedBytes -= e.size;
    return true;
  }

  /** Drop every expired record; returns how many went. */
  sweep(): number {
    const now = this.clock.wallNow();
    let n = 0;
    for (const [k, e] of this.entries) {
      if (expiresAt(e.rec) <= now) {
        this.entries.delete(k);
        this.usedBytes -= e.size;
        n++;
      }
    }
    return n;
  }

  /** Live records whose ring position lies in (from, to] (hand-off and replication). */
  range(from: string, to: string): DhtRecord[] {
    const now = this.clock.wallNow();
    const out: DhtRecord[] = [];
    for (const e of this.entries.values()) if (expiresAt(e.rec) > now && inHalfOpen(e.pos, from, to)) out.push(e.rec);
    return out;
  }

  /** Live records whose ring position lies outside (from, to]. */
  outside(from: string, to: string): DhtRecord[] {
    const now = this.clock.wallNow();
    const out: DhtRecord[] = [];
    for (const e of this.entries.values()) if (expiresAt(e.rec) > now && !inHalfOpen(e.pos, from, to)) out.push(e.rec);
    return out;
  }

  /** Every live record. */
  all(): DhtRecord[] {
    const now = this.clock.wallNow();
    const out: DhtRecord[] = [];
    for (const e of this.entries.values()) if (expiresAt(e.rec) > now) out.push(e.rec);
    return out;
  }

  keys(): IterableIterator<string> {
    return this.entries.keys();
  }

  private live(key: string): Entry | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (expiresAt(e.rec) <= this.clock.wallNow()) {
      this.entries.delete(key);
      this.usedBytes -= e.size;
      return undefined;
    }
    return e;
  }
}
