import { defaultParams, type WhanauParams } from '../../src/dht/whanau/params.ts';
import { preferentialAttachment } from '../../src/sim/social-graph.ts';
import { SeededRandom } from '../../src/util/random.ts';
import { WhanauDaemon, type WhanauDaemonOptions } from '../../src/whanausip/whanau-daemon.ts';

export interface TlsTestnet {
  daemons: WhanauDaemon[];
  edges: [number, number][];
  params: Readonly<WhanauParams>;
  close(): Promise<void>;
}

/**
 * n Whanau daemons over real TLS on loopback in this process, linked by a
 * preferential-attachment social graph in which both ends of every edge add
 * each other by `<hash>@host:port` (keys learned by handshake).
 */
export async function startTlsTestnet(
  n: number,
  opts: { seed?: number; m?: number; params?: Partial<WhanauParams>; extra?: Partial<WhanauDaemonOptions> } = {},
): Promise<TlsTestnet> {
  // A TLS handshake costs milliseconds of CPU on each side and a SETUP opens one link per walk end: small tables
  // and patient timeouts keep a loaded test machine from turning slowness into lost walks.
  // Under a load of 10 on two cores, a handshake among 30 busy nodes in one process has been seen to take 15 s.
  const params = defaultParams(n, { periodMs: 3600_000, rd: 8, rf: 8, rs: 8, rpcTimeoutMs: 60_000, ...opts.params });
  const limits = { connectTimeoutMs: 60_000, handshakeTimeoutMs: 60_000, requestTimeoutMs: 60_000 };
  const daemons = await Promise.all(
    Array.from({ length: n }, () =>
      WhanauDaemon.start({ host: '127.0.0.1', port: 0, params, schedule: false, limits, ...opts.extra }),
    ),
  );
  const e = preferentialAttachment(n, opts.m ?? 3, new SeededRandom(opts.seed ?? 1));
  const edges: [number, number][] = [];
  for (let k = 0; k < e.count; k++) edges.push([e.a[k], e.b[k]]);
  await Promise.all(
    edges.flatMap(([a, b]) => [
      daemons[a].addPeer({ hash: daemons[b].hash, addr: daemons[b].self.addr }),
      daemons[b].addPeer({ hash: daemons[a].hash, addr: daemons[a].self.addr }),
    ]),
  );
  return {
    daemons,
    edges,
    params,
    close: async () => {
      await Promise.all(daemons.map((d) => d.close()));
    },
  };
}
