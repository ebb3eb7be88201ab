import { mkdirSync } from 'node:fs';
import { type ConfigFile, readConfigFile } from './config-file.ts';
import { OverlayError } from './errors.ts';

export interface OptionSpec {
  /** 'string' takes a value, 'boolean' is a flag, 'list' may repeat. */
  type: 'string' | 'boolean' | 'list';
  default?: string | boolean;
  help?: string;
  /** An integer option's bounds: checked in a config file, and by intOption when it is given none. */
  min?: number;
  max?: number;
  /** The only values allowed (checked in a config file). */
  choices?: readonly string[];
  /** Redacted by --print-config (options named like passwords, tokens, secrets and keys are too). */
  secret?: boolean;
  /** A one-shot action (edit the data directory, print, exit): a command-line flag only, never a config key. */
  action?: boolean;
  /** The value's form (an address, a peer spec), checked in a config file: what is wrong, or undefined. */
  check?: (value: string) => string | undefined;
}

export type ParsedArgs = Record<string, string | boolean | string[] | undefined>;

/**
 * Strict `--name value` / `--name=value` / `--flag` parsing. Unknown options,
 * missing values and stray positionals are errors with a one-line message.
 */
export function parseArgs(argv: string[], spec: Record<string, OptionSpec>): ParsedArgs {
  const out = parseCommandLine(argv, spec);
  specs.set(out, spec);
  // `--config FILE`: the file's keys fill in what the command line did not give (flags override the file).
  if (spec.config !== undefined && typeof out.config === 'string' && out.config !== '') {
    const file = readConfigFile(out.config, spec);
    configs.set(out, file);
    lastWithConfig = out;
    const given = explicit.get(out) ?? new Set<string>();
    for (const [name, value] of Object.entries(file.values)) if (!given.has(name)) out[name] = value;
  }
  return out;
}

function parseCommandLine(argv: string[], spec: Record<string, OptionSpec>): ParsedArgs {
  const out: ParsedArgs = {};
  const given = new Set<string>();
  explicit.set(out, given);
  for (const [name, s] of Object.entries(spec)) {
    if (s.type === 'list') out[name] = [];
    else if (s.default !== undefined) out[name] = s.default;
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new OverlayError('BAD_ARGUMENT', `unexpected argument '${a}'`);
    const eq = a.indexOf('=');
    const name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
    const s = spec[name];
    if (!s) throw new OverlayError('BAD_ARGUMENT', `unknown option '--${name}'`);
    given.add(name);
    if (s.type === 'boolean') {
      if (eq >= 0) throw new OverlayError('BAD_ARGUMENT', `option '--${name}' takes no value`);
      out[name] = true;
      continue;
    }
    let value: string | undefined;
    if (eq >= 0) value = a.slice(eq + 1);
    else {
      value = argv[i + 1];
      if (value === undefined || value.startsWith('--'))
        throw new OverlayError('BAD_ARGUMENT', `option '--${name}' needs a value`);
      i++;
    }
    if (s.type === 'list') (out[name] as string[]).push(value);
    else out[name] = value;
  }
  return out;
}

/** Parse an integer option within bounds (by default its spec's min and max), or throw a one-line error naming it. */
export function intOption(args: ParsedArgs, name: string, min?: number, max?: number): number {
  const s = specs.get(args)?.[name];
  min ??= s?.min ?? Number.MIN_SAFE_INTEGER;
  max ??= s?.max ?? Number.MAX_SAFE_INTEGER;
  const raw = args[name];
  if (typeof raw !== 'string' || !/^-?\d+$/.test(raw))
    throw new OverlayError('BAD_ARGUMENT', `--${name} must be an integer, got '${String(raw)}'`);
  const v = Number(raw);
  if (v < min || v > max)
    throw new OverlayError('BAD_ARGUMENT', `--${name} must be between ${min} and ${max}, got ${v}`);
  return v;
}

/** Parse a float option within bounds. */
export function floatOption(args: ParsedArgs, name: string, min: number, max: number): number {
  const raw = args[name];
  const v = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : Number.NaN;
  if (!Number.isFinite(v) || v < min || v > max)
    throw new OverlayError(
      'BAD_ARGUMENT',
      `--${name} must be a number between ${min} and ${max}, got '${String(raw)}'`,
    );
  return v;
}

export interface HostPort {
  host: string;
  port: number;
}

/** Parse `host:port` or `[v6]:port`; port 0 means "any free port". */
export function parseHostPort(value: string, what: string): HostPort {
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(value) ?? /^([^:[\]]+):(\d+)$/.exec(value);
  if (!m) throw new OverlayError('BAD_ARGUMENT', `${what} must be host:port or [ipv6]:port, got '${value}'`);
  const port = Number(m[2]);
  if (port > 65535) throw new OverlayError('BAD_ARGUMENT', `${what} port must be at most 65535, got ${port}`);
  return { host: m[1], port };
}

/** OptionSpec.check for a `host:port` option. */
export function checkHostPort(value: string): string | undefined {
  try {
    parseHostPort(value, 'the address');
    return undefined;
  } catch (e) {
    return (e as OverlayError).reason;
  }
}

export function formatHostPort(hp: HostPort): string {
  return hp.host.includes(':') ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
}

/** The value of a string option that must be given, or a one-line error naming it. */
export function requiredOption(args: ParsedArgs, name: string): string {
  const v = args[name];
  if (typeof v !== 'string' || v === '') throw new OverlayError('BAD_ARGUMENT', `--${name} is required`);
  return v;
}

/** A required directory option, created (0700) if missing; a path that cannot be a directory is a one-line error. */
export function dataDirOption(args: ParsedArgs, name = 'data'): string {
  const dir = requiredOption(args, name);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'EEXIST' ? 'it is not a directory' : (e as Error).message;
    throw new OverlayError('BAD_ARGUMENT', `--${name} '${dir}' cannot be used: ${why}`);
  }
  return dir;
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Options given on the command line (not defaults), per parse result. */
const explicit = new WeakMap<ParsedArgs, Set<string>>();
/** The option table each parse result was read with, and the config file it read. */
const specs = new WeakMap<ParsedArgs, Record<string, OptionSpec>>();
const configs = new WeakMap<ParsedArgs, ConfigFile>();

/** True when the option was on the command line, false when its value is the default. */
export function optionGiven(args: ParsedArgs, name: string): boolean {
  return explicit.get(args)?.has(name) ?? false;
}

/** Where an option's value came from: the command line, the `--config` file, or the default (or unset). */
export function optionSource(args: ParsedArgs, name: string): 'flag' | 'file' | 'default' {
  if (optionGiven(args, name)) return 'flag';
  return configs.get(args)?.values[name] !== undefined ? 'file' : 'default';
}

/** The last parse result that read a config file: what a start-up error about an option is traced to. */
let lastWithConfig: ParsedArgs | undefined;

/**
 * A bad-option message (`--timeout must be ...`) about a value that came
 * from the config file, restated to name the file and the key, so the
 * operator looks in the right place; other messages are returned unchanged.
 */
export function traceToConfigFile(message: string): string {
  const args = lastWithConfig;
  const file = args && configs.get(args);
  if (!args || !file) return message;
  for (const m of message.matchAll(/--([a-z][a-z0-9-]*)/g))
    if (optionSource(args, m[1]) === 'file')
      return `${file.path}: key '${m[1]}': ${message.replace(/^bad command-line argument: /, '')}`;
  return message;
}

/** The config file a parse result read (`--config`), if any. */
export function configFileOf(args: ParsedArgs): ConfigFile | undefined {
  return configs.get(args);
}

/** The option table a parse result was read with. */
export function specOf(args: ParsedArgs): Record<string, OptionSpec> | undefined {
  return specs.get(args);
}

/**
 * `--log-level` checked against pino's levels. Without the option on the
 * command line, `SECP2PSIP_LOG` (the README's switch) sets it, then the default.
 */
export function logLevelOption(args: ParsedArgs, name = 'log-level'): string {
  const env = process.env.SECP2PSIP_LOG;
  // The command line, then the config file (so SIGHUP can change the level), then the environment.
  if (optionSource(args, name) === 'default' && env !== undefined && env !== '') {
    if (!LOG_LEVELS.includes(env))
      throw new OverlayError('BAD_ARGUMENT', `SECP2PSIP_LOG must be one of ${LOG_LEVELS.join(', ')}, got '${env}'`);
    return env;
  }
  const level = String(args[name]);
  if (!LOG_LEVELS.includes(level))
    throw new OverlayError('BAD_ARGUMENT', `--${name} must be one of ${LOG_LEVELS.join(', ')}, got '${level}'`);
  return level;
}

/** A command's usage line followed by one line per option with its help text and its default. */
export function optionsUsage(head: string, spec: Record<string, OptionSpec>, pad: number): string {
  const lines = [head, ''];
  for (const [name, s] of Object.entries(spec)) {
    const shown = s.type === 'string' && s.default !== undefined && !/\(default/.test(s.help ?? '');
    lines.push(`  --${name.padEnd(pad)} ${s.help}${shown ? ` (default: ${s.default})` : ''}`);
  }
  return lines.join('\n');
}
