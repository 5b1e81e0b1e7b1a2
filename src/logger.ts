import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * JSON logs on stderr (stdout belongs to the CLI's output), constant messages with the variable parts as
 * fields. Level from STUFIO_LOG_LEVEL, default info. Replaceable: every component takes a Logger.
 */
export function createLogger(options: { level?: string; name?: string } = {}): Logger {
  return pino(
    {
      name: options.name ?? 'stufio-sidecar',
      level: options.level ?? process.env.STUFIO_LOG_LEVEL ?? 'info',
      base: { pid: process.pid },
      // Secrets must never reach a log line, whatever object a caller passes.
      redact: {
        paths: ['*.password', '*.token', '*.pass', '*.nkey', '*.seed', 'nats.auth', 'config.nats.token', 'config.nats.password'],
        censor: '[redacted]',
      },
    },
    pino.destination({ fd: 2, sync: false }),
  );
}

/** A logger that discards everything, for unit tests and embedded use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
