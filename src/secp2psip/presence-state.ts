/**
 * A user's presence state (RFC 3863 basic status and note, ordered by `seq`) and its encoding: the payload of
 * a signed PRESENCE message (presence.ts) and of the user's `/pres/<user>` ring record (presence-records.ts),
 * so both carry the same bytes and are read by the same bounded decoder.
 */
import { encode as cborEncode } from 'cborg';
import { fail, ok, type Result } from '../util/errors.ts';
import { decodeCbor, int, strip } from './wire-fields.ts';

/** A user's presence as its adapter publishes it (RFC 3863 basic status and note), ordered by `seq`. */
export interface PresenceState {
  open: boolean;
  note?: string;
  /** Grows with every change the presentity's adapter makes (a newer state wins). */
  seq: number;
}

/** Longest presence note carried (characters). */
export const PRESENCE_NOTE_MAX = 256;

export function encodePresenceState(s: PresenceState): Uint8Array {
  return cborEncode(strip({ open: s.open, note: s.note, seq: s.seq }));
}

export function decodePresenceState(buf: unknown): Result<PresenceState> {
  const r = decodeCbor(buf);
  if (!r.ok) return r;
  const o = r.value;
  if (typeof o.open !== 'boolean') return fail('bad open');
  if (o.note !== undefined && (typeof o.note !== 'string' || o.note.length > PRESENCE_NOTE_MAX))
    return fail('bad note');
  try {
    return ok(strip({ open: o.open, note: o.note, seq: int(o, 'seq') }) as unknown as PresenceState);
  } catch {
    return fail('bad seq');
  }
}
