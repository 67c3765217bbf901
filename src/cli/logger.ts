/** The CLI's pino logger: JSON lines to stderr (stdout stays for results), written synchronously so nothing is lost on exit. */
import { pino, type Logger as PinoLogger } from 'pino';
import type { LogLevel } from './config.js';

/** A pino logger at `level` writing to stderr. */
export function createCliLogger(level: LogLevel, name = 'comfyguard'): PinoLogger {
  return pino({ name, level, base: { pid: process.pid } }, pino.destination({ dest: 2, sync: true }));
}
