/**
 * What an adapter keeps of each call it placed (its recent calls, the
 * metrics, the dashboard's ladder): who called whom, the final answer, the
 * flow's steps (caller.ts CallTrace) and the key pieces robust rebuilding
 * corrected, with the ring nodes that held them.
 */
import { getCallId } from '../sip/header-values.ts';
import type { SipRequest } from '../sip/message.ts';
import type { Clock } from '../util/clock.ts';
import type { CallOutcome, CallTrace } from './caller.ts';

export interface CallRecord {
  caller: string;
  callee: string;
  status: number;
  ms: number;
  mode: string;
  /** Wall-clock time the phone's INVITE arrived (ms since the epoch). */
  at: number;
  callId: string;
  reason: string;
  /** The overlay error behind a refusal (its class: why a 403 was a 403). */
  code?: string;
  /** The flow's steps (caller.ts CallTrace). */
  trace: CallTrace;
  /** Key pieces of the callee that robust rebuilding corrected, and the ring nodes that held them. */
  badPieces: number[];
  badHolders: Record<number, string>;
}

/** Told about every call placed through this adapter once its final answer went to the phone. */
export type CallObserver = (call: CallRecord) => void;

export function callRecordOf(
  out: CallOutcome,
  c: { caller: string; callee: string; mode: string; ms: number },
  req: SipRequest,
  clock: Clock,
): CallRecord {
  return {
    ...c,
    status: out.ok ? 302 : out.status,
    at: clock.wallNow() - c.ms,
    callId: getCallId(req) ?? '',
    reason: out.ok ? 'Moved Temporarily' : out.reason,
    code: out.ok ? undefined : out.code,
    trace: out.trace,
    badPieces: out.ok ? out.callee.pieces.bad : [],
    badHolders: (out.ok ? out.callee.pieces.holders : undefined) ?? {},
  };
}
