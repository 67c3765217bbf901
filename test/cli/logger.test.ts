import { describe, expect, it } from 'vitest';
import { createCliLogger, humanLine } from '../../src/cli/logger.js';

describe('the human log format', () => {
  it('writes one line per event: time, level, component, message, cause, identifying fields; no stack, no HTML, no objects', () => {
    const lines: string[] = [];
    const log = createCliLogger('info', 'comfyguard', 'human', (l) => lines.push(l));
    const err = new Error('small-gpu POST /free: HTTP 503 <html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body><center><h1>503</h1></center><hr><center>nginx</center></body></html>');
    log.child({ component: 'guard' }).warn({ err, server: 'small-gpu', detail: { deep: true } }, 'free memory failed');
    log.error({ alert: 'error_spike', count: 12, threshold: 10, byCode: { COMFYUI_OOM: 12 } }, 'error spike: 12 errors in 60 s (threshold 10)');
    expect(lines).toHaveLength(2);
    expect(lines.every((l) => l.endsWith('\n') && l.split('\n').length === 2)).toBe(true);
    expect(lines[0]).toMatch(/^\d\d:\d\d:\d\d WARN {2}\[guard\] free memory failed: small-gpu POST \/free: HTTP 503 503 Service Temporarily Unavailable \(server=small-gpu\)\n$/);
    expect(lines[0]).not.toMatch(/<|at Object|deep/);
    expect(lines[1]).toMatch(/ERROR error spike: 12 errors in 60 s \(threshold 10\) \(alert=error_spike, count=12, threshold=10\)/);
  });

  it('passes a line that is not JSON through as one clean line', () => {
    expect(humanLine('plain\nsecond')).toBe('plain');
  });

  it('json keeps pino JSON lines', () => {
    const lines: string[] = [];
    createCliLogger('info', 'comfyguard', 'json', (l) => lines.push(l)).info({ server: 'a' }, 'hello');
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 30, msg: 'hello', server: 'a', name: 'comfyguard' });
  });
});
