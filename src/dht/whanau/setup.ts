import type { NodeRef } from '../../rpc/types.ts';
import { Responses, type WalkQuestion } from './messages.ts';
import type { WhanauNode } from './node.ts';
import { chooseId } from './procedures.ts';
import { randomHexKey } from './ring.ts';
import { SetupRun } from './state.ts';
import { askAlongWalks } from './walk-question.ts';

/**
 * SETUP(u) of seed 003 Figure A-1 for one epoch: db, then per layer the id,
 * fingers and successor records, each phase published at once (notify) so
 * other nodes' walks waiting for it (section 4.6) are answered. Every walk
 * carries its question to its end and brings the answer back over the social
 * links (walk-question.ts); records are checked before they are kept.
 */
export async function runSetup(node: WhanauNode, epoch: number): Promise<Record<string, unknown>> {
  const p = node.params;
  const run = new SetupRun(epoch, p.layers);
  node.current = run;
  node.stats.setups++;
  await node.refreshPeers();
  // db(u) <- SAMPLE-RECORDS(u, r_d)
  const samples = await askWalks(node, p.rd, { m: 'sampleRecord' }, Responses.record);
  run.setDb(samples.flatMap((s) => (s.value && node.checked(s.value) ? [s.value] : [])));
  node.notify();
  for (let i = 0; i < p.layers; i++) {
    // ids(u, i) <- CHOOSE-ID(u, i)
    const prev = i > 0 ? run.fingers[i - 1]?.ids : undefined;
    run.ids[i] = chooseId(i, run.dbKeys, prev, node.random) ?? randomHexKey(node.random.bytes(20));
    node.notify();
    // fingers(u, i) <- FINGERS(u, i, r_f)
    const fIds = await askWalks(node, p.rf, { m: 'getId', epoch, layer: i }, Responses.id);
    run.setFingers(
      i,
      fIds.map((f) => ({ id: f.value, ref: f.ref })),
    );
    node.notify();
    // succ(u, i) <- SUCCESSORS(u, i, r_s)
    const x0 = run.ids[i] as string;
    const sets = await askWalks(node, p.rs, { m: 'successors', epoch, x0, t: p.t }, Responses.records);
    const succ = new Map<string, Uint8Array>();
    const seen = new Set<string>();
    for (const kv of sets.flatMap((s) => s.value.slice(0, p.t))) {
      const tag = `${kv.key}:${Buffer.from(kv.value).toString('base64')}`;
      if (seen.has(tag)) continue; // the same record from several samples is checked once
      seen.add(tag);
      if (node.checked(kv)) succ.set(kv.key, kv.value);
    }
    run.succ[i] = succ;
    node.notify();
  }
  run.complete = true;
  node.published = run;
  node.notify();
  node.log.debug(run.summary(), 'setup done');
  return run.summary();
}

/** Walks of length w carrying `q`; the answers that decode (null answers and failures count as no answer). */
async function askWalks<T>(
  node: WhanauNode,
  count: number,
  q: WalkQuestion,
  decode: (p: unknown) => { ok: true; value: T } | { ok: false; error: string },
): Promise<{ ref: NodeRef; value: T }[]> {
  const out: { ref: NodeRef; value: T }[] = [];
  for (const w of await askAlongWalks(node, count, node.params.w, q)) {
    if (w.answer === null) continue; // the end could not answer in time (section 4.6: try another node next time)
    const r = decode(w.answer);
    if (r.ok) out.push({ ref: w.ref, value: r.value });
    else node.stats.malformedDropped++;
  }
  return out;
}
