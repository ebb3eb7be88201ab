/**
 * The options every daemon shares for its configuration and logs (`--config`,
 * `--print-config`, `--log-format`), and what a command does with them before
 * it starts: check that the file is for this command, print the effective
 * configuration when asked.
 */
import { configFileOf, type OptionSpec, optionSource, type ParsedArgs, specOf } from './args.ts';
import { configKeys, isSecret, PHONE_USERS_KEY } from './config-file.ts';
import { OverlayError } from './errors.ts';
import { LOG_FORMATS, type LogFormat } from './log.ts';
import { holdSighupWhileStarting } from './reload.ts';

export const DAEMON_OPTIONS = {
  config: {
    type: 'string',
    help: 'TOML file with a key per option (flags override it); SIGHUP reloads its safe parts',
  },
  'print-config': {
    type: 'boolean',
    action: true,
    help: 'print the effective configuration (file, flags, defaults; secrets redacted), then exit',
  },
  'log-format': {
    type: 'string',
    choices: LOG_FORMATS,
    help: 'json | pretty (default: pretty when stderr is a terminal, else json)',
  },
} as const satisfies Record<string, OptionSpec>;

/**
 * Run before a daemon starts: refuses a config file written for another
 * command, and answers `--print-config`. Returns the exit code when the
 * command is done (printed), else undefined.
 */
export function configPreamble(args: ParsedArgs, role: string): number | undefined {
  holdSighupWhileStarting();
  const file = configFileOf(args);
  if (file?.role !== undefined && file.role !== role)
    throw new OverlayError('BAD_CONFIG', `${file.path}: key 'role': the file is for '${file.role}', not '${role}'`);
  if (args['print-config'] === true) {
    process.stdout.write(effectiveConfig(args, role));
    return 0;
  }
  return undefined;
}

/** `--log-format`, or undefined for the default (pretty on a terminal). */
export function logFormatOption(args: ParsedArgs): LogFormat | undefined {
  const f = args['log-format'];
  if (f === undefined) return undefined;
  if (!(LOG_FORMATS as readonly unknown[]).includes(f))
    throw new OverlayError('BAD_ARGUMENT', `--log-format must be json or pretty, got '${String(f)}'`);
  return f as LogFormat;
}

const REDACTED = '[redacted]';
/** The password of a URL's user part (`postgres://user:password@host/db`), whatever the key holding it. */
const URL_PASSWORD = /^([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*):[^@/\s]*@/i;

/**
 * The effective configuration as a TOML file (what `config check` accepts):
 * every key with its value from the command line, the file or the default,
 * the source as a comment; secrets redacted; unset keys as comments.
 */
export function effectiveConfig(args: ParsedArgs, role: string): string {
  const spec = specOf(args) ?? {};
  const file = configFileOf(args);
  const lines = [
    `# secp2psip ${role}: effective configuration (flags override ${file ? file.path : 'the config file'}, which overrides the defaults)`,
    `role = "${role}"`,
  ];
  for (const key of configKeys(spec)) {
    const s = spec[key];
    const v = args[key];
    const source = optionSource(args, key);
    const from = source === 'flag' ? 'command line' : source === 'file' ? 'config file' : 'default';
    if (v === undefined || v === false || (Array.isArray(v) && v.length === 0)) {
      lines.push(`# ${key}: not set${s.type === 'boolean' ? ' (false)' : ''}`);
      continue;
    }
    lines.push(`${key} = ${tomlValue(key, s, v)}  # ${from}`);
  }
  if (file?.phoneUsers && Object.keys(file.phoneUsers).length > 0) {
    lines.push('', `[${PHONE_USERS_KEY}]  # config file`);
    for (const name of Object.keys(file.phoneUsers)) lines.push(`${tomlKey(name)} = "${REDACTED}"`);
  }
  return `${lines.join('\n')}\n`;
}

function tomlValue(key: string, s: OptionSpec, v: string | boolean | string[]): string {
  if (typeof v === 'boolean') return String(v);
  const one = (x: string) =>
    isSecret(key, s)
      ? `"${REDACTED}"`
      : URL_PASSWORD.test(x)
        ? JSON.stringify(x.replace(URL_PASSWORD, `$1:${REDACTED}@`))
        : (s.min !== undefined || s.max !== undefined) && /^-?\d+$/.test(x)
          ? x
          : JSON.stringify(x);
  return Array.isArray(v) ? `[${v.map(one).join(', ')}]` : one(v);
}

const tomlKey = (k: string) => (/^[A-Za-z0-9_-]+$/.test(k) ? k : JSON.stringify(k));
