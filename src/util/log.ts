import { type Bindings, type ChildLoggerOptions, type DestinationStream, pino, type Logger } from 'pino';
import { createRequire } from 'node:module';
import { LOG_LEVELS } from './args.ts';

export type { Logger };

/** `--log-format`: JSON lines (for machines, fail2ban, journald) or pino-pretty's text (for people). */
export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/**
 * Every logger createLogger made and every child of theirs, so setLogLevel
 * reaches them all: pino copies a parent's level into a child when the child
 * is made, and never looks at the parent again.
 */
const live = new Set<WeakRef<Logger>>();
const sweep = new FinalizationRegistry<WeakRef<Logger>>((ref) => live.delete(ref));
function track(l: Logger): void {
  const ref = new WeakRef(l);
  live.add(ref);
  sweep.register(l, ref);
}

/** Change the level of every logger of the process (a SIGHUP reload of `log-level`). */
export function setLogLevel(level: string): void {
  if (!LOG_LEVELS.includes(level)) throw new Error(`unknown log level '${level}'`);
  for (const ref of live) {
    const l = ref.deref();
    if (l) l.level = level;
    else live.delete(ref);
  }
}

/** The environment variable that sets the level when a command is not given `--log-level`. */
export const LOG_ENV = 'SECP2PSIP_LOG';

/**
 * One logger for the whole process. Structured JSON lines on stderr, so stdout
 * stays free for a command's own output (JSON results, tables). Children carry
 * context: `log.child({ component: 'sip', node: id })`. Secrets are redacted.
 *
 * Level: `opts.level` (a command's explicit `--log-level`), else
 * `SECP2PSIP_LOG`, else silent under tests and info otherwise. An unknown
 * level in the environment is ignored rather than stopping the process.
 */
export function createLogger(opts: { level?: string; name?: string; format?: LogFormat } = {}): Logger {
  const env = process.env[LOG_ENV];
  const fromEnv = env !== undefined && LOG_LEVELS.includes(env) ? env : undefined;
  const level = opts.level ?? fromEnv ?? (process.env.NODE_ENV === 'test' ? 'silent' : 'info');
  // Pretty only for a person: on a terminal, or when asked; JSON lines otherwise (what fail2ban reads).
  const format = opts.format ?? (process.stderr.isTTY ? 'pretty' : 'json');
  const destination: DestinationStream =
    format === 'pretty' ? prettyStream() : pino.destination({ fd: 2, sync: false });
  const root = withUniqueKeys(
    pino(
      {
        name: opts.name ?? 'secp2psip',
        level,
        redact: {
          paths: [
            'privateKey',
            '*.privateKey',
            'piece',
            '*.piece',
            'pieces',
            '*.pieces',
            'secret',
            '*.secret',
            'password',
            '*.password',
            'token',
            '*.token',
          ],
          censor: '[redacted]',
        },
        onChild: track,
      },
      destination,
    ),
  );
  track(root);
  return root;
}

/** pino-pretty's stream on stderr, loaded only when asked for (it costs about 30 ms at start-up). */
function prettyStream(): DestinationStream {
  const pretty = createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty');
  return pretty({ destination: 2, colorize: process.stderr.isTTY === true, sync: true });
}

/**
 * pino appends a child's bindings to its parent's, so a module that names its
 * own `component` under a command's logger that already named one wrote the
 * key twice in every line. Here a child whose bindings repeat a key is built
 * from the root with the merged bindings instead: the innermost value wins,
 * each key appears once. Children inherit this `child` (pino creates them
 * with Object.create of their parent).
 */
export function withUniqueKeys(root: Logger): Logger {
  const pinoChild = root.child as unknown as (this: Logger, b: Bindings, o?: ChildLoggerOptions) => Logger;
  const rootKeys = new Set(Object.keys(root.bindings()));
  function child(this: Logger, bindings: Bindings, options?: ChildLoggerOptions): Logger {
    const current = this.bindings();
    if (!Object.keys(bindings).some((k) => Object.hasOwn(current, k))) return pinoChild.call(this, bindings, options);
    const merged: Bindings = {};
    for (const [k, v] of Object.entries({ ...current, ...bindings }))
      if (!rootKeys.has(k) || Object.hasOwn(bindings, k)) merged[k] = v;
    return pinoChild.call(root, merged, { level: this.level, ...options });
  }
  root.child = child as unknown as Logger['child'];
  return root;
}

/** A logger that drops everything: the default for cores and tests. */
export const silentLogger: Logger = pino({ level: 'silent' });
