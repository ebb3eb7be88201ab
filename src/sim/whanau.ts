import { type BulkAdversary, BulkWhanau } from './whanau-bulk.ts';
import { defaultParams, tableEntries, type WhanauParams } from '../dht/whanau/params.ts';
import { intOption, parseArgs } from '../util/args.ts';
import { OverlayError } from '../util/errors.ts';
import { ProgressBar } from '../util/progress.ts';
import { type Random, SeededRandom } from '../util/random.ts';
import { mean, percentile } from '../util/stats.ts';
import { buildSocialGraph } from './social-graph.ts';

/**
 * `secp2psip sim whanau`: a synthetic social network of honest nodes plus a
 * Sybil region behind G attack edges, one Whanau SETUP, then lookups of honest
 * keys from random honest nodes (the evaluation of the Whanau paper, NSDI 2010
 * section 9, and of seed 003 chapter 5). Same seed, same JSON.
 */

export type Attack = 'none' | 'cluster' | 'drop';

export interface WhanauSimOptions {
  honest: number;
  attackEdges: number;
  sybils?: number;
  attack?: Attack;
  /** r_d = r_f = r_s = table (default about sqrt(3 n), see params.ts). */
  table?: number;
  layers?: number;
  walk?: number;
  seed?: number;
  lookups?: number;
  /** Honest keys the clustering attack aims at; lookups then ask for these keys. */
  targets?: number;
  progress?: boolean;
}

export interface WhanauSimResult {
  honest: number;
  sybils: number;
  attackEdges: number;
  attack: Attack;
  seed: number;
  params: {
    w: number;
    rd: number;
    rf: number;
    rs: number;
    t: number;
    l: number;
    tryLimit: number;
    lookupLimit: number;
  };
  lookups: number;
  succeeded: number;
  failed: number;
  successRate: number;
  medianMessages: number;
  p99Messages: number;
  meanMessages: number;
  /** Nominal entries per node: r_d + l (r_f + r_s t). */
  tableEntries: number;
  /** Mean entries held after dropping Sybil answers and duplicate successor records. */
  storedEntries: number;
  /** Share of SETUP walks that ended in the Sybil region. */
  escapedWalks: number;
  meanHonestDegree: number;
}

/** Width of the arc just before a target key where clustering Sybils put their ids. */
const CLUSTER_WIDTH = 1e-12;

/** A uniformly random ring position with 53 bits, like a SHA-1 key's top bits. */
function position(rnd: Random): number {
  return (rnd.int(2 ** 26) * 2 ** 27 + rnd.int(2 ** 27)) / 2 ** 53;
}

function adversaryFor(attack: Attack, targetPos: number[]): BulkAdversary {
  if (attack === 'cluster') {
    // Key-clustering attack: every Sybil id, in every layer, sits just before a target key.
    return {
      fingerId: (_layer, rnd) => {
        const x = targetPos[rnd.int(targetPos.length)] - CLUSTER_WIDTH * (0.5 + 0.5 * rnd.next());
        return x < 0 ? x + 1 : x;
      },
    };
  }
  // drop (and the unused case none): ids anywhere, answers that fail every check.
  return { fingerId: (_layer, rnd) => position(rnd) };
}

export function simulateWhanau(opts: WhanauSimOptions): WhanauSimResult {
  return simulateWhanauLayers(opts, [opts.layers ?? defaultParams(opts.honest).layers])[0];
}

/**
 * One SETUP with max(layerCounts) layers, then the same lookups (same nodes,
 * same keys, same walk stream) once per entry of layerCounts, each seeing only
 * its first l layers. SETUP builds layers in order from one random stream, so
 * each result equals that of a run with --layers l on the same seed.
 */
export function simulateWhanauLayers(opts: WhanauSimOptions, layerCounts: number[]): WhanauSimResult[] {
  if (layerCounts.length === 0) throw new RangeError('no layer count');
  const attack = opts.attack ?? 'cluster';
  const seed = opts.seed ?? 1;
  const honest = opts.honest;
  const sybils = opts.sybils ?? (opts.attackEdges > 0 ? Math.max(1, Math.ceil(honest / 10)) : 0);
  if (opts.attackEdges > 0 && sybils === 0)
    throw new OverlayError('BAD_ARGUMENT', '--attack-edges needs --sybils >= 1');
  const root = new SeededRandom(seed);
  const graphRnd = root.fork();
  const keyRnd = root.fork();
  const setupRnd = root.fork();
  const lookupRnd = root.fork();

  const graph = buildSocialGraph({ honest, sybils, attackEdges: opts.attackEdges }, graphRnd);
  // Under 'none' the Sybil identities follow the protocol like anyone else.
  const protocolNodes = attack === 'none' ? honest + sybils : honest;
  const keyPos = new Float64Array(protocolNodes);
  for (let u = 0; u < protocolNodes; u++) keyPos[u] = position(keyRnd);

  const lookups = opts.lookups ?? 1000;
  const nTargets = Math.min(honest, opts.targets ?? 5);
  const targets: number[] = [];
  while (targets.length < nTargets) {
    const k = keyRnd.int(honest);
    if (!targets.includes(k)) targets.push(k);
  }
  const overrides: Partial<WhanauParams> = {};
  if (opts.table !== undefined) Object.assign(overrides, { rd: opts.table, rf: opts.table, rs: opts.table });
  overrides.layers = Math.max(...layerCounts);
  if (opts.walk !== undefined) overrides.w = opts.walk;
  const params = defaultParams(honest, overrides);

  const bar = new ProgressBar('whanau setup', protocolNodes * (1 + 3 * params.layers), {
    quiet: opts.progress === false,
  });
  const dht = new BulkWhanau({
    graph,
    protocolNodes,
    keyPos,
    params,
    adversary: adversaryFor(
      attack,
      targets.map((t) => keyPos[t]),
    ),
    rnd: setupRnd,
    onProgress: (done) => bar.update(done),
  });
  dht.setup();
  bar.done();

  const escapedWalks = dht.totalWalks > 0 ? Math.round((dht.escapedWalks / dht.totalWalks) * 1e6) / 1e6 : 0;
  const lookupSeed = lookupRnd.int(0xffffffff);
  return layerCounts.map((l) => {
    // Every layer count replays the same lookups: same (node, key) pairs, same walks.
    const rnd = new SeededRandom(lookupSeed);
    dht.reseedWalks(rnd.int(0xffffffff));
    const lbar = new ProgressBar(`whanau lookups l=${l}`, lookups, { quiet: opts.progress === false });
    const messages: number[] = [];
    let succeeded = 0;
    for (let k = 0; k < lookups; k++) {
      const u = rnd.int(honest);
      const owner = attack === 'cluster' && opts.attackEdges > 0 ? targets[rnd.int(nTargets)] : rnd.int(honest);
      const out = dht.lookup(u, owner, rnd, l);
      if (out.value === owner) succeeded++;
      messages.push(out.messages);
      if (k % 64 === 0) lbar.update(k);
    }
    lbar.done();
    const lp = { ...params, layers: l };
    return {
      honest,
      sybils,
      attackEdges: opts.attackEdges,
      attack,
      seed,
      params: {
        w: lp.w,
        rd: lp.rd,
        rf: lp.rf,
        rs: lp.rs,
        t: lp.t,
        l,
        tryLimit: lp.tryLimit,
        lookupLimit: lp.lookupLimit,
      },
      lookups,
      succeeded,
      failed: lookups - succeeded,
      successRate: lookups > 0 ? succeeded / lookups : 0,
      medianMessages: lookups > 0 ? percentile(messages, 50) : 0,
      p99Messages: lookups > 0 ? percentile(messages, 99) : 0,
      meanMessages: lookups > 0 ? Math.round(mean(messages) * 1000) / 1000 : 0,
      tableEntries: tableEntries(lp),
      storedEntries: Math.round(dht.meanStoredEntries(l) * 10) / 10,
      escapedWalks,
      meanHonestDegree: Math.round(graph.meanHonestDegree * 1000) / 1000,
    };
  });
}

const SPEC = {
  honest: { type: 'string' },
  'attack-edges': { type: 'string' },
  sybils: { type: 'string' },
  attack: { type: 'string', default: 'cluster' },
  table: { type: 'string' },
  layers: { type: 'string' },
  walk: { type: 'string' },
  seed: { type: 'string', default: '1' },
  lookups: { type: 'string', default: '1000' },
  targets: { type: 'string', default: '5' },
  json: { type: 'boolean' },
  quiet: { type: 'boolean' },
  help: { type: 'boolean' },
} as const;

const USAGE =
  'usage: secp2psip sim whanau --honest N --attack-edges G [--sybils S] [--attack none|cluster|drop] ' +
  '[--table T] [--layers L] [--walk W] [--seed S] [--lookups K] [--targets M] [--json] [--quiet]';

/** Parse and check the command line; throws OverlayError('BAD_ARGUMENT') with a one-line message. */
export function parseWhanauSimArgs(argv: string[]): WhanauSimOptions & { json: boolean } {
  const a = parseArgs(argv, SPEC);
  if (a.honest === undefined) throw new OverlayError('BAD_ARGUMENT', '--honest N is required');
  if (a['attack-edges'] === undefined) throw new OverlayError('BAD_ARGUMENT', '--attack-edges G is required');
  const honest = intOption(a, 'honest', 10, 2_000_000);
  const attackEdges = intOption(a, 'attack-edges', 0, 100_000_000);
  const attack = a.attack as string;
  if (attack !== 'none' && attack !== 'cluster' && attack !== 'drop')
    throw new OverlayError('BAD_ARGUMENT', `--attack must be none, cluster or drop, got '${attack}'`);
  const opt = (name: string, min: number, max: number) =>
    a[name] === undefined ? undefined : intOption(a, name, min, max);
  const sybils = opt('sybils', 0, 10_000_000);
  if (attackEdges > 0 && sybils === 0) throw new OverlayError('BAD_ARGUMENT', '--attack-edges > 0 needs --sybils >= 1');
  return {
    honest,
    attackEdges,
    sybils,
    attack,
    table: opt('table', 1, 100_000),
    layers: opt('layers', 1, 16),
    walk: opt('walk', 1, 100),
    seed: intOption(a, 'seed', 0, 2 ** 32 - 1),
    lookups: intOption(a, 'lookups', 1, 10_000_000),
    targets: intOption(a, 'targets', 1, 1_000_000),
    progress: a.quiet !== true,
    json: a.json === true,
  };
}

export async function runWhanauSim(argv: string[]): Promise<number> {
  if (argv.includes('--help')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const opts = parseWhanauSimArgs(argv);
  const r = simulateWhanau(opts);
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(r)}\n`);
    return 0;
  }
  const p = r.params;
  const lines = [
    `whanau: ${r.honest} honest, ${r.sybils} sybils, ${r.attackEdges} attack edges, attack ${r.attack}, seed ${r.seed}`,
    `params: w=${p.w} r_d=${p.rd} r_f=${p.rf} r_s=${p.rs} t=${p.t} l=${p.l} (table ${r.tableEntries} entries, ${r.storedEntries} held)`,
    `lookups: ${r.succeeded}/${r.lookups} succeeded (${(r.successRate * 100).toFixed(1)}%)`,
    `messages per lookup: median ${r.medianMessages}, p99 ${r.p99Messages}, mean ${r.meanMessages}`,
    `setup walks escaping to the Sybil region: ${(r.escapedWalks * 100).toFixed(2)}%`,
    JSON.stringify(r),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
