import type { RunningBootstrap } from '../../src/secp2psip/daemon.ts';
import type { PgRegistry } from '../../src/secp2psip/registry-pg.ts';

/** A bootstrap on a shared registry gone without leaving: its ring, links and database connections dropped. */
export async function crashBootstrap(b: RunningBootstrap): Promise<void> {
  b.server.ring.stop();
  await b.server.endpoint.close();
  b.server.registry.close();
  await (b.server.names as PgRegistry).close();
}
