/**
 * A call's outcome as metrics: the setup histogram by mode and outcome
 * (`verified`, `403` with the overlay error as its reason class, `404`,
 * `408`, `480`, other statuses by number), and each corrected key piece
 * counted against the ring node that sent it.
 */
import type { CallObserver, CallRecord } from '../secp2psip/call-record.ts';
import type { Metrics } from '../util/metrics.ts';

export function outcomeLabels(c: CallRecord): { outcome: string; reason: string } {
  if (c.status === 302) return { outcome: 'verified', reason: '' };
  const reason = c.status === 403 ? (c.code ?? 'forbidden').toLowerCase() : '';
  return { outcome: String(c.status), reason };
}

export function callObserver(metrics: Metrics | undefined, next?: CallObserver): CallObserver | undefined {
  if (!metrics) return next;
  return (c) => {
    const { outcome, reason } = outcomeLabels(c);
    // The 403's reason class goes into the outcome label, so the histogram has two labels: mode and outcome.
    metrics.observe('secp2psip_call_setup_seconds', c.ms / 1000, {
      mode: c.mode,
      outcome: reason ? `${outcome}_${reason}` : outcome,
    });
    for (const i of c.badPieces)
      metrics.count('secp2psip_bad_key_pieces_total', { holder: c.badHolders[i] ?? 'unknown' });
    next?.(c);
  };
}
