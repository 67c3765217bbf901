import { describe, expect, it } from 'vitest';
import { ComfyRequestError } from '../comfy/errors.js';
import { compileRetryPolicy } from './retry.js';
import { parseRetryAfter, retryAfterFrom } from './retry-after.js';

const now = Date.parse('2026-03-01T12:00:00Z');

describe('parseRetryAfter', () => {
  it('reads delay-seconds', () => {
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
  });

  it('reads an HTTP-date relative to now, and a past date as no wait', () => {
    expect(parseRetryAfter('Sun, 01 Mar 2026 12:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Sun, 01 Mar 2026 11:00:00 GMT', now)).toBe(0);
  });

  it('ignores absent and unreadable values', () => {
    for (const v of [undefined, null, '', 'soon', '-5', '1.5', 'Xyz, 99 Foo 2026 GMT']) expect(parseRetryAfter(v, now)).toBeUndefined();
  });
});

describe('retryAfterFrom', () => {
  it('reads the header from a ComfyRequestError case-insensitively and feeds the retry policy', () => {
    const err = new ComfyRequestError({ kind: 'http', status: 429, message: 'Too Many Requests', headers: { 'Retry-After': '7' } });
    const hint = retryAfterFrom(err, now);
    expect(hint).toBe(7_000);
    expect(compileRetryPolicy().delayMs(1, { retryAfterMs: hint }, () => 0)).toBe(7_000);
  });

  it('reads an HTTP-date header', () => {
    const err = new ComfyRequestError({ kind: 'http', status: 503, message: 'x', headers: { 'retry-after': 'Sun, 01 Mar 2026 12:00:10 GMT' } });
    expect(retryAfterFrom(err, now)).toBe(10_000);
  });

  it('is undefined for anything without the header', () => {
    expect(retryAfterFrom(new Error('x'), now)).toBeUndefined();
    expect(retryAfterFrom(new ComfyRequestError({ kind: 'http', status: 503, message: 'x', headers: {} }), now)).toBeUndefined();
    expect(retryAfterFrom(null, now)).toBeUndefined();
  });
});
