/**
 * Child processes of a benchmark (servers, load generators) are killed when the benchmark ends, however it ends:
 * normal exit, SIGINT (Ctrl-C), SIGTERM, SIGHUP, or an uncaught error. A tracked process is killed with its
 * descendants (Kamailio forks workers that outlive a killed main process). Other clean-up (a cgroup to remove)
 * registers with `atExit` and runs after the processes are gone. Everything here is synchronous, as an exit
 * handler must be.
 */
import { readdirSync, readFileSync } from 'node:fs';

const tracked = new Set<number>();
const hooks: Array<() => void> = [];
let hooked = false;

function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/** The processes and all their descendants. */
function withDescendants(roots: Iterable<number>): number[] {
  const children = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    const pid = Number(d);
    if (!Number.isInteger(pid)) continue;
    const pp = parentOf(pid);
    if (pp !== undefined) children.set(pp, [...(children.get(pp) ?? []), pid]);
  }
  const out = [...roots];
  for (let i = 0; i < out.length; i++) out.push(...(children.get(out[i]) ?? []));
  return out;
}

function killTracked(): void {
  if (tracked.size === 0) return;
  for (const pid of withDescendants(tracked).reverse()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  tracked.clear();
}

function cleanup(): void {
  killTracked();
  for (const h of hooks.splice(0)) {
    try {
      h();
    } catch (e) {
      process.stderr.write(`clean-up failed: ${(e as Error).message}\n`);
    }
  }
}

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', cleanup);
  const codes = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const;
  for (const sig of Object.keys(codes) as Array<keyof typeof codes>)
    process.on(sig, () => {
      process.stderr.write(`\n${sig}: stopping the servers and load generators\n`);
      process.exit(codes[sig]);
    });
  process.on('uncaughtException', (e) => {
    process.stderr.write(`${e.stack ?? String(e)}\n`);
    process.exit(1);
  });
  process.on('unhandledRejection', (e) => {
    process.stderr.write(`${(e as Error)?.stack ?? String(e)}\n`);
    process.exit(1);
  });
}

/** Kill this process (and its descendants) if the benchmark ends while it runs. */
export function track(pid: number | undefined): void {
  if (pid === undefined) return;
  hook();
  tracked.add(pid);
}

/** The process ended or was stopped in order. */
export function untrack(pid: number | undefined): void {
  if (pid !== undefined) tracked.delete(pid);
}

/** Run `fn` when the benchmark ends, after the tracked processes are killed. */
export function atExit(fn: () => void): void {
  hook();
  hooks.push(fn);
}
