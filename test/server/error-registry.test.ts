/**
 * One registry for every error comfyguard raises: each code in the source is registered (ComfyUI
 * codes in errors/codes.ts, the rest in errors/service-codes.ts), each HTTP answer uses the status
 * its code is registered with, and the README's table matches the registry row by row.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/errors/codes.js';
import { renderServiceMessage, SERVICE_ERROR_CODES, SERVICE_ERRORS } from '../../src/errors/service-codes.js';
import { toApiError } from '../../src/server/api-error.js';
import { STORE_ERROR_CODES } from '../../src/store/errors.js';

const ROOT = join(import.meta.dirname, '..', '..');
const SRC = join(ROOT, 'src');

function* sources(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* sources(p);
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts') && !p.includes(`${join('src', 'bench')}`)) yield p;
  }
}

const RAISED = [
  /new (?:Guard|Store|Patch|ComfyGuard|Service|Config)Error\(\s*'([A-Z][A-Z0-9_]+)'/g,
  /readonly code = '([A-Z][A-Z0-9_]+)'/g,
];
const API_ANSWERS = /new ApiError\(\s*(\d{3}),\s*'([A-Z][A-Z0-9_]+)'/g;

const known = new Set<string>([...ERROR_CODES, ...SERVICE_ERROR_CODES]);

describe('the error registry', () => {
  it('registers every code the source raises, the stores\' codes included', () => {
    const missing: string[] = [];
    for (const file of sources(SRC)) {
      const text = readFileSync(file, 'utf8');
      for (const re of RAISED) for (const m of text.matchAll(re)) if (!known.has(m[1]!) && m[1] !== 'NOT_A_CODE') missing.push(`${file.slice(ROOT.length + 1)}: ${m[1]}`);
    }
    for (const c of STORE_ERROR_CODES) if (!known.has(c)) missing.push(`store: ${c}`);
    expect(missing).toEqual([]);
  });

  it('answers every ApiError with the status its code is registered with', () => {
    const wrong: string[] = [];
    for (const file of sources(join(SRC, 'server'))) {
      for (const m of readFileSync(file, 'utf8').matchAll(API_ANSWERS)) {
        const info = SERVICE_ERRORS[m[2] as keyof typeof SERVICE_ERRORS];
        if (!info) wrong.push(`${m[2]} is not registered`);
        // A code may answer a near status (UPSTREAM_ERROR 502 for a gateway, 400 for an upstream refusal) only through the mapper.
        else if (info.httpStatus !== Number(m[1]) && m[2] !== 'VALIDATION_ERROR') wrong.push(`${m[2]}: ${m[1]} but registered ${info.httpStatus}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('maps errors of other layers by lookup: status and public code from the registry', () => {
    const cases: Array<[string, number, string]> = [
      ['JOB_NOT_FOUND', 404, 'NOT_FOUND'],
      ['INVALID_JOB', 400, 'VALIDATION_ERROR'],
      ['GUARD_CLOSED', 503, 'SERVICE_UNAVAILABLE'],
      ['STORE_UNAVAILABLE', 503, 'STORE_UNAVAILABLE'],
      ['STORE_CORRUPT_ROW', 409, 'CORRUPT_RECORD'],
      ['CORRUPT_RECORD', 409, 'CORRUPT_RECORD'],
      ['STORE_ERROR', 500, 'INTERNAL'],
      ['DISPATCHER_UNAVAILABLE', 503, 'SERVICE_UNAVAILABLE'],
      ['COMFYUI_OOM', 507, 'COMFYUI_OOM'],
    ];
    for (const [code, status, answer] of cases) {
      const e = toApiError(Object.assign(new Error(`something about ${code}`), { code, jobId: 'j-1' }));
      expect([code, e.status, e.code]).toEqual([code, status, answer]);
    }
    // A damaged row is never a bare 500: the answer says how to get rid of it.
    expect(toApiError(Object.assign(new Error('bad json'), { code: 'CORRUPT_RECORD', jobId: 'j-9' })).message).toContain('DELETE /api/jobs/j-9');
    // Internal details of a 5xx stay in the log.
    expect(toApiError(Object.assign(new Error('pg: password authentication failed for user x'), { code: 'STORE_ERROR' })).message).not.toMatch(/password|pg:/);
  });

  it('fills message templates and leaves unknown placeholders visible', () => {
    expect(renderServiceMessage('more than {limit} nodes in {field}', { limit: 5 })).toBe('more than 5 nodes in {field}');
  });

  it('is documented in the README, row for row', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const rows = new Map<string, string[]>();
    for (const m of readme.matchAll(/^\| `([A-Z][A-Z0-9_]+)` \| (\d{3}) \| (\w+) \| (\w+) \| `([A-Z][A-Z0-9_]+)` \|/gm)) rows.set(m[1]!, [m[2]!, m[3]!, m[4]!, m[5]!]);
    const expected = new Map(SERVICE_ERROR_CODES.map((c) => [c, [String(SERVICE_ERRORS[c].httpStatus), SERVICE_ERRORS[c].category, SERVICE_ERRORS[c].layer, SERVICE_ERRORS[c].answer]]));
    expect(Object.fromEntries(rows)).toEqual(Object.fromEntries(expected));
  });
});
