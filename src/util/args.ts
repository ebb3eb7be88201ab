import { mkdirSync } from 'node:fs';
import { OverlayError } from './errors.ts';

export interface OptionSpec {
  /** 'string' takes a value, 'boolean' is a flag, 'list' may repeat. */
  type: 'string' | 'boolean' | 'list';
  default?: string | boolean;
  help?: string;
}

export type ParsedArgs = Record<string, string | boolean | string[] | undefined>;

/**
 * Strict `--name value` / `--name=value` / `--flag` parsing. Unknown options,
 * missing values and stray positionals are errors with a one-line message.
 */
export function parseArgs(argv: string[], spec: Record<string, OptionSpec>): ParsedArgs {
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

/** Parse an integer option within bounds, or throw a one-line error naming it. */
export function intOption(args: ParsedArgs, name: string, min: number, max: number): number {
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

/** True when the option was on the command line, false when its value is the default. */
export function optionGiven(args: ParsedArgs, name: string): boolean {
  return explicit.get(args)?.has(name) ?? false;
}

/**
 * `--log-level` checked against pino's levels. Without the option on the
 * command line, `SECP2PSIP_LOG` (the README's switch) sets it, then the default.
 */
export function logLevelOption(args: ParsedArgs, name = 'log-level'): string {
  const env = process.env.SECP2PSIP_LOG;
  if (!optionGiven(args, name) && env !== undefined && env !== '') {
    if (!LOG_LEVELS.includes(env))
      throw new OverlayError('BAD_ARGUMENT', `SECP2PSIP_LOG must be one of ${LOG_LEVELS.join(', ')}, got '${env}'`);
    return env;
  }
  const level = String(args[name]);
  if (!LOG_LEVELS.includes(level))
    throw new OverlayError('BAD_ARGUMENT', `--${name} must be one of ${LOG_LEVELS.join(', ')}, got '${level}'`);
  return level;
}

/** A command's usage line followed by one line per option with its help text. */
export function optionsUsage(head: string, spec: Record<string, OptionSpec>, pad: number): string {
  const lines = [head, ''];
  for (const [name, s] of Object.entries(spec)) lines.push(`  --${name.padEnd(pad)} ${s.help}`);
  return lines.join('\n');
}
