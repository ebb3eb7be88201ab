/**
 * Why a key rebuild failed, told apart for the caller (key-lookup.ts): too
 * few pieces came back (holders unreachable, the ring moving records while
 * it repairs itself) is transient and ends in SHARING_NOT_ENOUGH_PIECES,
 * which the phone gets as 480 with Retry-After (RFC 3261 21.4.18, 20.33);
 * pieces that were refused, undecodable or disagreeing beyond correction are
 * an attack or corruption and end in VERIFICATION_FAILED (403), naming the
 * holders.
 *
 * The ring read drops records its validator refuses (a piece not signed by a
 * bootstrap, altered bytes) the same way it drops absent ones
 * (dht/chord/record-ops.ts), so a piece nobody answered may be either. Before
 * calling a failure transient, the replicas of every unanswered piece are
 * asked once more for their raw copy: one that serves a copy the validator
 * refuses makes the failure a verification failure. This costs one lookup
 * and r FETCHes per unanswered piece, paid only by a read that failed.
 */
import type { ChordNode } from '../dht/chord/chord-node.ts';
import { decodeFetchReply, METHOD } from '../dht/chord/messages.ts';
import { OverlayError } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import { pieceKey } from './ring-records.ts';

/** What classifying needs of the lookup's context. */
export interface FailureContext {
  ring: ChordNode;
  k: number;
  log: Logger;
}

/** The pieces of a failed rebuild, as key-lookup.ts saw them. */
export interface FailedRebuild {
  /** The sharing layer's error (combineRobust or combineSeed). */
  error: OverlayError;
  /** Pieces no replica returned through the validator. */
  unanswered: readonly number[];
  /** Pieces returned but not decodable as this user's piece. */
  undecodable: readonly number[];
}

/** `<id prefix>@addr` of a ring node, as the logs and the per-holder counts name it. */
function nodeName(n: { id: string; addr: string }): string {
  return `${n.id.slice(0, 12)}@${n.addr}`;
}

/** Which ring nodes answer for the given pieces (for the logs and the per-holder count of bad pieces). */
export async function holdersOf(
  ring: ChordNode,
  name: string,
  indices: readonly number[],
): Promise<Record<number, string>> {
  const out: Record<number, string> = {};
  await Promise.all(
    indices.map(async (i) => {
      const r = await ring.lookup(pieceKey(name, i));
      out[i] = r.ok ? nodeName(r.owner) : 'unknown';
    }),
  );
  return out;
}

/**
 * For each unanswered piece, the replicas that serve a copy this node's validator refuses (with its reason),
 * and otherwise the owner that had nothing to give (or `unknown` when its lookup failed).
 */
async function probeUnanswered(
  ring: ChordNode,
  name: string,
  indices: readonly number[],
): Promise<{ refused: Record<number, string>; missing: Record<number, string> }> {
  const refused: Record<number, string> = {};
  const missing: Record<number, string> = {};
  await Promise.all(
    indices.map(async (i) => {
      const key = pieceKey(name, i);
      const lr = await ring.lookup(key);
      if (!lr.ok) {
        missing[i] = 'unknown';
        return;
      }
      const why = await Promise.all(
        lr.replicas.map(async (h) => {
          const raw = await ring.call(h, METHOD.FETCH, { keys: [key] });
          const rep = raw === null ? undefined : decodeFetchReply(raw);
          const rec = rep?.ok ? rep.value.records[0] : undefined;
          if (!rec) return null;
          if (rec.key !== key) return `${nodeName(h)} (another key)`;
          const bad = ring.store.check(rec);
          return bad === null ? null : `${nodeName(h)} (${bad})`;
        }),
      );
      const liars = why.filter((w): w is string => w !== null);
      if (liars.length > 0) refused[i] = liars.join(', ');
      else missing[i] = nodeName(lr.owner);
    }),
  );
  return { refused, missing };
}

/**
 * The error a failed rebuild of `name` ends in, logged: SHARING_NOT_ENOUGH_PIECES (480) when the only fault
 * is pieces that did not come back, VERIFICATION_FAILED (403) naming the holders when any piece was refused,
 * undecodable or disagreeing.
 */
export async function rebuildFailure(ctx: FailureContext, name: string, f: FailedRebuild): Promise<OverlayError> {
  const e = f.error;
  const detail = e.detail ?? {};
  const disagreeing = (detail.disagreeing as number[] | undefined) ?? [];
  const invalid = (detail.invalid as number[] | undefined) ?? [];
  const sorted = (xs: Iterable<number>) => [...new Set(xs)].sort((a, b) => a - b);
  const shortOnly = e.code === 'SHARING_NOT_ENOUGH_PIECES' && f.undecodable.length === 0 && invalid.length === 0;
  if (shortOnly) {
    const probe = await probeUnanswered(ctx.ring, name, f.unanswered);
    const missing = sorted(Object.keys(probe.missing).map(Number));
    if (Object.keys(probe.refused).length === 0) {
      ctx.log.warn(
        { user: name, code: e.code, missingPieces: missing, holders: probe.missing },
        `key pieces of ${name} did not answer (fewer than k=${ctx.k}); the ring may be repairing`,
      );
      return new OverlayError(
        'SHARING_NOT_ENOUGH_PIECES',
        `key of ${name} unavailable: pieces ${missing.join(', ')} did not answer (${e.message})`,
        { missing, holders: probe.missing },
      );
    }
    // A holder served a piece the validator refuses: not a repair, a forgery or corruption.
    const suspects = sorted(f.unanswered);
    const holders: Record<number, string> = { ...probe.missing, ...probe.refused };
    ctx.log.error(
      {
        user: name,
        code: e.code,
        suspectPieces: suspects,
        refusedPieces: sorted(Object.keys(probe.refused).map(Number)),
        holders,
      },
      `key pieces of ${name} refused by the validator; failing closed`,
    );
    return new OverlayError('VERIFICATION_FAILED', `key pieces of ${name} refused (${e.code})`, { suspects, holders });
  }
  const suspects = sorted([...f.undecodable, ...f.unanswered, ...disagreeing, ...invalid]);
  const holders = await holdersOf(ctx.ring, name, suspects);
  ctx.log.error(
    { user: name, code: e.code, suspectPieces: suspects, holders },
    `key pieces of ${name} missing or disagreeing beyond correction; failing closed`,
  );
  return new OverlayError('VERIFICATION_FAILED', `key pieces of ${name} disagree (${e.code})`, { suspects, holders });
}
