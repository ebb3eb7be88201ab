/**
 * SIGHUP: read the `--config` file again and apply what a running daemon can
 * change safely: the log level for every daemon, plus what each daemon hands
 * in (rate limits, enrolment tokens required or not, phone users). Anything
 * else that changed (addresses, the data directory, the mode) needs a restart:
 * it is logged as such and ignored, and the daemon keeps running on what it
 * has. A file that no longer parses is logged and changes nothing. Calls and
 * registrations are not touched by a reload.
 */
import { statSync } from 'node:fs';
import { configFileOf, logLevelOption, type OptionSpec, optionSource, type ParsedArgs, parseArgs } from './args.ts';
import { configKeys, PHONE_USERS_KEY } from './config-file.ts';
import { type Logger, setLogLevel } from './log.ts';

/** Applies a changed key from the re-read configuration; throws (a one-line reason) to keep the old value. */
export type Applier = (next: ParsedArgs) => void;

export interface ReloadOptions {
  argv: string[];
  spec: Record<string, OptionSpec>;
  role: string;
  log: Logger;
  /** Keys the daemon can change while running, beyond `log-level`; `phone-users` for the file's table. */
  appliers?: Record<string, Applier>;
}

export interface Reloader {
  /** Re-read and apply now (what SIGHUP does); resolves to the keys applied and ignored. */
  reload(): { applied: string[]; ignored: string[]; failed: string[] } | undefined;
  /** Remove the SIGHUP handler. */
  close(): void;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * Node ends a process on SIGHUP unless it has a handler, and a service manager may send one as soon as the
 * daemon's process exists (systemd's Type=simple counts it started at once): until the daemon is up, a SIGHUP
 * is only remembered, and the reload runs once the daemon installs its handler.
 */
let hupWhileStarting = false;
const earlyHup = () => {
  hupWhileStarting = true;
};
export function holdSighupWhileStarting(): void {
  if (!process.listeners('SIGHUP').includes(earlyHup)) process.on('SIGHUP', earlyHup);
}

/** Phone passwords in a file others may read: worth a warning at every start and reload. */
function warnIfExposed(args: ParsedArgs, log: Logger): void {
  const file = configFileOf(args);
  if (!file?.phoneUsers || Object.keys(file.phoneUsers).length === 0) return;
  try {
    const mode = statSync(file.path).mode & 0o777;
    if (mode & 0o077)
      log.warn(
        { file: file.path, mode: mode.toString(8) },
        `${file.path} holds phone passwords and others may read it: chmod 600 ${file.path}`,
      );
  } catch {
    // Read a moment ago; gone now: the next reload reports it.
  }
}

/** Install the SIGHUP handler of a daemon started with `args` (parsed from `o.argv`). */
export function reloadOnSighup(args: ParsedArgs, o: ReloadOptions): Reloader {
  const appliers: Record<string, Applier> = {
    'log-level': (next) => setLogLevel(logLevelOption(next)),
    ...o.appliers,
  };
  const keys = configKeys(o.spec);
  const current: Record<string, unknown> = Object.fromEntries(keys.map((k) => [k, args[k]]));
  current[PHONE_USERS_KEY] = configFileOf(args)?.phoneUsers;
  const log = o.log.child({ event: 'reload' });
  warnIfExposed(args, o.log);

  const reload = () => {
    if (configFileOf(args) === undefined) {
      log.info('SIGHUP: started without --config, nothing to reload');
      return undefined;
    }
    let next: ParsedArgs;
    try {
      next = parseArgs(o.argv, o.spec);
      const role = configFileOf(next)?.role;
      if (role !== undefined && role !== o.role)
        throw new Error(`key 'role': the file is for '${role}', not '${o.role}'`);
    } catch (e) {
      log.error({ err: (e as Error).message }, 'configuration not reloaded: the file is bad; nothing changed');
      return undefined;
    }
    warnIfExposed(next, o.log);
    const applied: string[] = [];
    const ignored: string[] = [];
    const failed: string[] = [];
    const nextValues: Record<string, unknown> = Object.fromEntries(keys.map((k) => [k, next[k]]));
    nextValues[PHONE_USERS_KEY] = configFileOf(next)?.phoneUsers;
    for (const key of [...keys, PHONE_USERS_KEY]) {
      if (same(current[key], nextValues[key])) continue;
      const apply = appliers[key];
      if (apply === undefined) {
        ignored.push(key);
        log.warn({ key, source: optionSource(next, key) }, `${key} changed: needs a restart; ignored until then`);
        continue;
      }
      try {
        apply(next);
        current[key] = nextValues[key];
        applied.push(key);
      } catch (e) {
        failed.push(key);
        log.error({ key, err: (e as Error).message }, `${key} not reloaded; the old value stays`);
      }
    }
    log.info({ applied, ignored, failed }, `configuration reloaded: ${applied.length} change(s) applied`);
    return { applied, ignored, failed };
  };
  const onHup = () => {
    reload();
  };
  process.on('SIGHUP', onHup);
  process.off('SIGHUP', earlyHup);
  if (hupWhileStarting) {
    hupWhileStarting = false;
    reload();
  }
  return { reload, close: () => process.off('SIGHUP', onHup) };
}
