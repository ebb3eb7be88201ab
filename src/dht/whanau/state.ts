import type { NodeRef } from '../../rpc/types.ts';
import type { KV } from './messages.ts';
import type { FingerView } from './procedures.ts';
import { compareKeys } from './ring.ts';

/**
 * WhanauState of one SETUP run (seed 003 section 4.2): the db sample, and per
 * layer the id, fingers and successor records, all tagged with the run's epoch
 * (the multiple of the period p it started at). Tables never change once a
 * phase is done; the next run builds fresh ones.
 */
export interface FingerTable {
  /** Sorted ids; refs[j] is the finger whose id is ids[j]. */
  ids: string[];
  refs: NodeRef[];
}

export class SetupRun {
  db: KV[] | undefined;
  dbKeys: string[] = [];
  readonly ids: (string | undefined)[];
  readonly fingers: (FingerTable | undefined)[];
  readonly succ: (Map<string, Uint8Array> | undefined)[];
  complete = false;

  constructor(
    readonly epoch: number,
    readonly layers: number,
  ) {
    this.ids = new Array(layers).fill(undefined);
    this.fingers = new Array(layers).fill(undefined);
    this.succ = new Array(layers).fill(undefined);
  }

  /**
   * db(u), sorted by key. Walks end at well-connected nodes more often, so the
   * same record comes back many times; copies are kept once, so that
   * SUCCESSORS-SAMPLE's t records after x0 are t different records and cover
   * as much of the ring as the seed intends.
   */
  setDb(records: KV[]): void {
    const sorted: KV[] = [];
    for (const r of [...records].sort((a, b) => compareKeys(a.key, b.key))) {
      const last = sorted[sorted.length - 1];
      if (last && last.key === r.key && Buffer.from(last.value).equals(r.value)) continue;
      sorted.push(r);
    }
    this.db = sorted;
    this.dbKeys = sorted.map((r) => r.key);
  }

  setFingers(layer: number, pairs: { id: string; ref: NodeRef }[]): void {
    const sorted = [...pairs].sort((a, b) => compareKeys(a.id, b.id));
    this.fingers[layer] = { ids: sorted.map((p) => p.id), refs: sorted.map((p) => p.ref) };
  }

  /** The layers' fingers as LOOKUP sees them (layers not built yet are empty). */
  view(): FingerView<string, NodeRef> {
    return {
      layers: this.fingers.map((f) => {
        const t = f ?? { ids: [], refs: [] };
        return { ids: t.ids, node: (j: number) => t.refs[j] };
      }),
    };
  }

  summary(): Record<string, unknown> {
    return {
      epoch: this.epoch,
      complete: this.complete,
      db: this.db?.length ?? 0,
      ids: this.ids,
      fingers: this.fingers.map((f) => f?.ids.length ?? 0),
      successors: this.succ.map((s) => s?.size ?? 0),
    };
  }
}
