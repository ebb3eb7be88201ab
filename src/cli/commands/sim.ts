import { type ChordSimResult, runChordSim, type SimProgress } from '../../sim/chord.ts';
import { type ChordSybilResult, simulateChordSybils } from '../../sim/chord-sybil.ts';
import { floatOption, intOption, parseArgs } from '../../util/args.ts';
import { OverlayError } from '../../util/errors.ts';
import { ProgressBar } from '../../util/progress.ts';

export const summary = 'simulate a DHT at scale on the in-memory network (sim chord | sim whanau)';

const CHORD_USAGE = `usage: secp2psip sim chord --nodes N --lookups L --churn F --seed S [--replicas r] [--liars FRACTION]
                          [--records K] [--window-ms MS] [--stabilize-ms MS] [--warm-start] [--json] [--quiet]
       secp2psip sim chord --nodes N --sybils S [--placement cluster|random] [--sybil-answer lie|drop]
                          [--targets T] [--lookups L] [--replicas r] [--seed S] [--json] [--quiet]
         (--sybils: the Sybil attack on a converged ring of N honest nodes, see src/sim/chord-sybil.ts)`;

/** `sim chord` runs here; `sim whanau` is delegated to the Whanau simulator. */
export async function run(argv: string[]): Promise<number> {
  const [which, ...rest] = argv;
  if (which === 'chord') return simChord(rest);
  if (which === 'whanau') {
    let mod: { runWhanauSim(argv: string[]): Promise<number> };
    try {
      mod = await import('../../sim/whanau.ts');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && String(e).includes('whanau'))
        throw new OverlayError('BAD_ARGUMENT', 'sim whanau is not available in this build');
      throw e;
    }
    return mod.runWhanauSim(rest);
  }
  if (which === undefined || which === '--help' || which === '-h') {
    process.stdout.write(`usage: secp2psip sim chord|whanau [options]\n${CHORD_USAGE}\n`);
    return which === undefined ? 2 : 0;
  }
  throw new OverlayError('BAD_ARGUMENT', `unknown simulation '${which}' (chord or whanau)`);
}

async function simChord(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${CHORD_USAGE}\n`);
    return 0;
  }
  if (argv.includes('--sybils')) return simChordSybils(argv);
  const args = parseArgs(argv, {
    nodes: { type: 'string' },
    lookups: { type: 'string' },
    churn: { type: 'string', default: '0' },
    seed: { type: 'string', default: '1' },
    replicas: { type: 'string', default: '3' },
    liars: { type: 'string', default: '0' },
    records: { type: 'string' },
    'window-ms': { type: 'string', default: '30000' },
    'stabilize-ms': { type: 'string', default: '1000' },
    'warm-start': { type: 'boolean' },
    json: { type: 'boolean' },
    quiet: { type: 'boolean' },
  });
  if (args.nodes === undefined) throw new OverlayError('BAD_ARGUMENT', '--nodes is required');
  if (args.lookups === undefined) throw new OverlayError('BAD_ARGUMENT', '--lookups is required');
  const nodes = intOption(args, 'nodes', 2, 200_000);
  const opts = {
    nodes,
    lookups: intOption(args, 'lookups', 0, 10_000_000),
    churn: floatOption(args, 'churn', 0, 0.5),
    seed: intOption(args, 'seed', 0, 2 ** 32 - 1),
    replicas: intOption(args, 'replicas', 1, 16),
    liars: floatOption(args, 'liars', 0, 0.5),
    records: args.records === undefined ? undefined : intOption(args, 'records', 0, 1_000_000),
    windowMs: intOption(args, 'window-ms', 1000, 3_600_000),
    stabilizeMs: intOption(args, 'stabilize-ms', 100, 600_000),
    warmStart: args['warm-start'] === true,
  };
  if (opts.replicas >= nodes) throw new OverlayError('BAD_ARGUMENT', '--replicas must be below --nodes');
  const bars = new Map<string, ProgressBar>();
  const onProgress = (p: SimProgress): void => {
    let bar = bars.get(p.phase);
    if (!bar) {
      for (const b of bars.values()) b.done();
      bars.clear();
      bar = new ProgressBar(p.phase.padEnd(7), p.total, { quiet: args.quiet === true });
      bars.set(p.phase, bar);
    }
    bar.update(p.done);
  };
  const res = await runChordSim(opts, onProgress);
  for (const b of bars.values()) b.done();
  process.stdout.write(args.json ? `${JSON.stringify(res)}\n` : summarize(res));
  return res.wrong === 0 ? 0 : 1;
}

async function simChordSybils(argv: string[]): Promise<number> {
  const args = parseArgs(argv, {
    nodes: { type: 'string' },
    sybils: { type: 'string' },
    placement: { type: 'string', default: 'cluster' },
    'sybil-answer': { type: 'string', default: 'lie' },
    targets: { type: 'string', default: '5' },
    lookups: { type: 'string', default: '1000' },
    replicas: { type: 'string', default: '3' },
    seed: { type: 'string', default: '1' },
    json: { type: 'boolean' },
    quiet: { type: 'boolean' },
  });
  if (args.nodes === undefined) throw new OverlayError('BAD_ARGUMENT', '--nodes is required');
  const placement = args.placement;
  if (placement !== 'cluster' && placement !== 'random')
    throw new OverlayError('BAD_ARGUMENT', `--placement must be cluster or random, got '${placement}'`);
  const answer = args['sybil-answer'];
  if (answer !== 'lie' && answer !== 'drop')
    throw new OverlayError('BAD_ARGUMENT', `--sybil-answer must be lie or drop, got '${answer}'`);
  const nodes = intOption(args, 'nodes', 2, 2_000_000);
  const replicas = intOption(args, 'replicas', 1, 16);
  if (replicas >= nodes) throw new OverlayError('BAD_ARGUMENT', '--replicas must be below --nodes');
  const lookups = intOption(args, 'lookups', 1, 10_000_000);
  const bar = new ProgressBar('lookups', lookups, { quiet: args.quiet === true });
  const r = await simulateChordSybils({
    nodes,
    sybils: intOption(args, 'sybils', 0, 10_000_000),
    placement,
    answer,
    targets: intOption(args, 'targets', 1, 1_000_000),
    lookups,
    replicas,
    seed: intOption(args, 'seed', 0, 2 ** 32 - 1),
    onProgress: (done) => bar.update(done),
  });
  bar.done();
  process.stdout.write(args.json ? `${JSON.stringify(r)}\n` : summarizeSybils(r));
  return 0;
}

function summarizeSybils(r: ChordSybilResult): string {
  return [
    `Chord under the Sybil attack: ${r.nodes} honest nodes, ${r.sybils} Sybils (${r.placement} ids, answers: ${r.answer}), r=${r.replicas}, seed ${r.seed}`,
    `lookups      ${r.lookups}: ${r.succeeded} found the record (${(r.successRate * 100).toFixed(1)}%), ${r.lookupFailed} ended without an owner, ${r.sybilOwner} accepted a Sybil owner`,
    `messages     per lookup median ${r.medianMessages}, p99 ${r.p99Messages}, mean ${r.meanMessages}; mean hops ${r.meanHops}`,
    '',
  ].join('\n');
}

function summarize(r: ChordSimResult): string {
  const pct = (x: number) => (r.lookups ? ((100 * x) / r.lookups).toFixed(2) : '0.00');
  return [
    `Chord simulation: ${r.nodes} nodes, r=${r.replicas}, churn ${r.churn} (${r.killed} crashed, ${r.joined} joined), ${r.liars} lying nodes, seed ${r.seed}`,
    `lookups      ${r.lookups}: ${r.succeeded} right (${pct(r.succeeded)}%; ${r.ownerNotYetLinked} at a not-yet-linked node's successor), ${r.failed} failed, ${r.wrong} wrong`,
    `hops         mean ${r.meanHops}, p99 ${r.p99Hops}; messages per lookup ${r.meanMessages}`,
    `records      ${r.recordsStored}/${r.records} stored, ${r.recordsLost} lost`,
    `simulated    ${(r.simulatedMs / 1000).toFixed(1)} s, ${r.messages} messages`,
    `wall clock   build ${r.timings.buildMs} ms, store ${r.timings.storeMs} ms, lookups ${r.timings.lookupMs} ms, total ${r.timings.totalMs} ms`,
    '',
  ].join('\n');
}
