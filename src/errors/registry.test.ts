import { readFileSync } from 'node:fs';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { ERROR_CATEGORIES, ERROR_CODES, ERROR_REGISTRY, isErrorCode, type ErrorCode } from './codes.js';
import { DEFAULT_RULES } from './default-rules.js';
import { scrubText } from './scrub.js';

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

/** The rows of the README's "Errors" table: code | category | retryable | what it means | what comfyguard does. */
function readmeErrorTable(): Array<{ code: string; category: string; retryable: string; meaning: string; action: string }> {
  const start = README.indexOf('\n## Errors');
  expect(start, 'README has an "## Errors" section').toBeGreaterThanOrEqual(0);
  const next = README.indexOf('\n## ', start + 5);
  const section = README.slice(start, next < 0 ? undefined : next);
  const rows = section.split('\n').filter((l) => /^\|\s*`[A-Z_]+`\s*\|/.test(l));
  return rows.map((l) => {
    const cells = l.split('|').slice(1, -1).map((c) => c.trim());
    return { code: (cells[0] ?? '').replace(/`/g, ''), category: cells[1] ?? '', retryable: cells[2] ?? '', meaning: cells[3] ?? '', action: cells[4] ?? '' };
  });
}

describe('error code registry', () => {
  it('has exactly one registry entry per code of the ErrorCode union, and nothing else', () => {
    expect(Object.keys(ERROR_REGISTRY).sort()).toEqual([...ERROR_CODES].sort());
    expect(new Set(ERROR_CODES).size).toBe(ERROR_CODES.length);
    // The union is derived from the list: a code missing from either side fails to compile here.
    expectTypeOf<keyof typeof ERROR_REGISTRY>().toEqualTypeOf<ErrorCode>();
    for (const code of ERROR_CODES) expect(isErrorCode(code)).toBe(true);
    expect(isErrorCode('COMFYUI_NOPE')).toBe(false);
  });

  it('gives every code a category, a user-safe message, a hint and an action', () => {
    for (const code of ERROR_CODES) {
      const info = ERROR_REGISTRY[code];
      expect(ERROR_CATEGORIES).toContain(info.category);
      expect(info.message.length, code).toBeGreaterThan(10);
      expect(info.hint.length, code).toBeGreaterThan(10);
      expect(info.action.length, code).toBeGreaterThan(3);
      expect(scrubText(info.message), `${code} message is already scrub-clean`).toBe(info.message);
      expect(scrubText(info.hint), `${code} hint is already scrub-clean`).toBe(info.hint);
    }
  });

  it('agrees with the README error table row by row (code, category, retryable, meaning, action)', () => {
    const rows = readmeErrorTable();
    expect(rows.map((r) => r.code)).toEqual([...ERROR_CODES]);
    for (const r of rows) {
      const info = ERROR_REGISTRY[r.code as ErrorCode];
      expect(r.category, r.code).toBe(info.category);
      expect(r.retryable, r.code).toBe(info.retryable ? 'yes' : 'no');
      expect(r.meaning, r.code).toBe(info.message);
      expect(r.action, r.code).toBe(info.action);
    }
  });

  it('marks exactly the permanent and fatal codes as not retryable', () => {
    for (const code of ERROR_CODES) {
      const info = ERROR_REGISTRY[code];
      expect(info.retryable, code).toBe(info.category === 'transient' || info.category === 'recoverable');
    }
  });

  it('has at least one built-in rule for every code except INTERNAL_ERROR fallbacks', () => {
    const covered = new Set(DEFAULT_RULES.map((r) => r.code));
    for (const code of ERROR_CODES) expect(covered.has(code), code).toBe(true);
    expect(new Set(DEFAULT_RULES.map((r) => r.id)).size).toBe(DEFAULT_RULES.length);
  });
});
