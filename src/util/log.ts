import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * One logger for the whole process. Structured JSON lines on stderr, so stdout
 * stays free for a command's own output (JSON results, tables). Children carry
 * context: `log.child({ component: 'sip', node: id })`. Secrets are redacted.
 */
export function createLogger(opts: { level?: string; name?: string } = {}): Logger {
  const level = opts.level ?? process.env.SECP2PSIP_LOG ?? (process.env.NODE_ENV === 'test' ? 'silent' : 'info');
  return pino(
    {
      name: opts.name ?? 'secp2psip',
      level,
      redact: {
        paths: ['privateKey', '*.privateKey', 'piece', '*.piece', 'pieces', '*.pieces', 'secret', '*.secret'],
        censor: '[redacted]',
      },
    },
    pino.destination({ fd: 2, sync: false }),
  );
}

/** A logger that drops everything: the default for cores and tests. */
export const silentLogger: Logger = pino({ level: 'silent' });
