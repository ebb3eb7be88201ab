import type { NodeRef, Payload } from '../../rpc/types.ts';
import { isOverlayError } from '../../util/errors.ts';
import { type AnsweredWalk, encodeNodeRef, MAX_ASKED_WALKS, Responses, type WalkQuestion } from './messages.ts';
import type { WhanauNode } from './node.ts';
import { successorsSample } from './procedures.ts';

/**
 * SETUP questions that travel with their random walk (seed 003 Figure A-1).
 *
 * In the seed, SETUP takes a walk end (a node and its query token, section
 * 4.4) and then calls that node directly: GET-ID, SAMPLE-RECORD or
 * SUCCESSORS-SAMPLE. Every such call is a new TLS link to a random node, so
 * one SETUP opens r_d + l (r_f + r_s) links per node: about 570,000 TLS
 * handshakes for 3,000 nodes with 300 table entries each. Here the question
 * rides with the walk instead: each step is a `whanau.askWalk` over a social
 * link (already open, peer-only), the node where the walk ends answers it from
 * its own state, and the answer comes back the way the walk went. SETUP then
 * opens no link but the social ones.
 *
 * Why this keeps the security argument of seed 003 (section 3.2, Whanau NSDI
 * 2010 section 5):
 * - The walk's distribution is unchanged: each step still picks a uniformly
 *   random active social peer, with the same length w. Walks that stay in the
 *   honest region end at (nearly) uniformly random honest nodes.
 * - A Sybil on the path could already divert the walk: the seed's walk end is
 *   whatever the last node on the path reports, so a walk that crosses an
 *   attack edge may end anywhere the attacker likes. Carrying the answer back
 *   through that Sybil gives it nothing more: it could as well have named a
 *   Sybil end that answers anything. Walks that stay among honest nodes are
 *   relayed by honest nodes, which forward answers untouched.
 * - Records are self-certifying: every record in an answer is checked by the
 *   asker's checker (key = SHA-1 of the signing key, signature, expiry) before
 *   it enters db or succ, exactly as a record fetched directly would be.
 * - An id paired with a ref is only a finger; a forged pair is no worse than a
 *   Sybil finger (a QUERY to it finds nothing), which escaped walks already give.
 * - Work stays bounded by walks: a node answers only for walks that reached it
 *   over a social link, and a peer asking for many walks could already make it
 *   forward as many. LOOKUP still calls walk ends directly and pays a query
 *   token for TRY (section 4.4); the public GET-ID, SAMPLE-RECORD and
 *   SUCCESSORS-SAMPLE still take a token from anyone who calls them.
 */

/** The answer the walk's end gives (the payload its public method would return). */
export async function answerQuestion(node: WhanauNode, q: WalkQuestion): Promise<Payload> {
  switch (q.m) {
    case 'sampleRecord': {
      // SAMPLE-RECORD(v): a random one of the records v publishes.
      const keys = [...node.records.keys()];
      if (keys.length === 0) return { record: null };
      const key = keys[node.random.int(keys.length)];
      return { record: { key, value: node.records.get(key) } };
    }
    case 'getId':
      return { id: await node.waitFor(q.epoch, (run) => run.ids[q.layer]) };
    case 'successors': {
      // SUCCESSORS-SAMPLE(v, x0): the t records of db(v) that follow x0.
      const run = await node.waitFor(q.epoch, (s) => (s.db ? s : undefined));
      const db = run.db ?? [];
      const t = Math.min(q.t, node.params.t);
      return { records: successorsSample(run.dbKeys, q.x0, t).map((j) => ({ key: db[j].key, value: db[j].value })) };
    }
  }
}

/** Does the answer have the shape its question's public method returns? */
function wellFormed(q: WalkQuestion, answer: unknown): boolean {
  if (answer === null) return true;
  if (q.m === 'sampleRecord') return Responses.record(answer).ok;
  if (q.m === 'getId') return Responses.id(answer).ok;
  return Responses.records(answer).ok;
}

/**
 * `count` walks of `length` steps from this node, each carrying `q`; resolves
 * with the walks that came back (an answer is null when the end could not
 * answer, e.g. its phase was not reached within the skew tolerance). Each
 * step picks a uniformly random active peer per walk; walks that take the
 * same step share one request. A peer that fails is marked inactive (one
 * that is only busy is not) and its walks are sent again (at most three rounds).
 */
export async function askAlongWalks(
  node: WhanauNode,
  count: number,
  length: number,
  q: WalkQuestion,
): Promise<AnsweredWalk[]> {
  if (length === 0) {
    const answer = await answerQuestion(node, q).catch((e: unknown) => {
      if (!isOverlayError(e)) node.log.warn({ err: String(e) }, 'walk question failed');
      return null;
    });
    // The same answer serves every walk that ended here, except SAMPLE-RECORD, which draws afresh per walk.
    if (q.m !== 'sampleRecord' || count === 1) return Array.from({ length: count }, () => ({ ref: node.self, answer }));
    const out: AnsweredWalk[] = [{ ref: node.self, answer }];
    for (let k = 1; k < count; k++) out.push({ ref: node.self, answer: await answerQuestion(node, q) });
    return out;
  }
  const out: AnsweredWalk[] = [];
  const p = node.params;
  // The end may hold the question up to the skew tolerance; every step adds up to one RPC timeout.
  const timeoutMs = p.skewMs + p.rpcTimeoutMs * length;
  for (let round = 0; round < 3 && out.length < count; round++) {
    const peers = node.activePeers();
    if (peers.length === 0) break;
    const counts = new Map<NodeRef, number>();
    for (let k = out.length; k < count; k++) {
      const peer = peers[node.random.int(peers.length)];
      counts.set(peer, (counts.get(peer) ?? 0) + 1);
    }
    await Promise.all(
      [...counts].map(async ([peer, c]) => {
        for (let done = 0; done < c; ) {
          const batch = Math.min(MAX_ASKED_WALKS, c - done);
          done += batch;
          try {
            const reply = await node.callWithin(
              peer,
              'whanau.askWalk',
              { length: length - 1, count: batch, question: q },
              timeoutMs,
            );
            const r = Responses.answeredWalks(reply, batch);
            if (!r.ok) {
              node.stats.malformedDropped++;
              continue;
            }
            node.peerAnswered(peer);
            for (const w of r.value) {
              if (wellFormed(q, w.answer)) out.push(w);
              else node.stats.malformedDropped++;
            }
          } catch (e) {
            // A peer busy with other walks (or our own bound on requests to it) is not a dead peer.
            if (!isOverlayError(e, 'RPC_TOO_MANY_IN_FLIGHT')) node.markInactive(peer);
            return;
          }
        }
      }),
    );
  }
  return out.slice(0, count);
}

/** The wire form of answered walks. */
export function encodeAnsweredWalks(walks: AnsweredWalk[]): Payload {
  return { walks: walks.map((w) => ({ ref: encodeNodeRef(w.ref), answer: w.answer })) };
}
