import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileRules } from '../../errors/index.js';
import { CLI, cliEnv, ensureBuilt, ROOT, runCli } from '../../../test/cli/binary.js';
import { classifyStream } from './classify.js';

async function collect(lines: string[], opts: Parameters<typeof classifyStream>[2] = {}) {
  const out = new PassThrough();
  const chunks: string[] = [];
  out.on('data', (c: Buffer) => chunks.push(c.toString()));
  const result = await classifyStream(Readable.from(lines.map((l) => `${l}\n`)), out, opts);
  out.end();
  return { ...result, output: chunks.join('').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('classifyStream', () => {
  it('writes one {id, code, category, retryable} line per input line', async () => {
    const r = await collect([
      JSON.stringify({ id: 'a', where: 'execution_error', exception_type: 'torch.OutOfMemoryError', message: 'CUDA out of memory', http_status: null }),
      '',
      JSON.stringify({ id: 'b', where: 'client_side', exception_type: null, message: 'connect ECONNREFUSED 127.0.0.1:8188' }),
      JSON.stringify({ id: 7, where: 'http_response', message: 'Request Entity Too Large', http_status: 413 }),
    ]);
    expect(r).toMatchObject({ lines: 3, bad: 0 });
    expect(r.output).toEqual([
      { id: 'a', code: 'COMFYUI_OOM', category: 'recoverable', retryable: true },
      { id: 'b', code: 'COMFYUI_CONNECTION_ERROR', category: 'transient', retryable: true },
      { id: '7', code: 'COMFYUI_INVALID_PARAMETERS', category: 'permanent', retryable: false },
    ]);
  });

  it('reports a bad line by its number and continues', async () => {
    const r = await collect(['{"id":"ok","message":"No space left on device"}', '{"id":', '{"id":"no-message"}', '{"id":"ok2","message":"Prompt has no outputs"}']);
    expect(r).toMatchObject({ lines: 4, bad: 2 });
    expect(r.output[0]).toMatchObject({ id: 'ok', code: 'COMFYUI_DISK_FULL' });
    expect(r.output[1]).toMatchObject({ line: 2 });
    expect(String(r.output[1]?.error)).toMatch(/invalid JSON/);
    expect(r.output[2]).toMatchObject({ line: 3, id: 'no-message' });
    expect(String(r.output[2]?.error)).toMatch(/message/);
    expect(r.output[3]).toMatchObject({ id: 'ok2', code: 'COMFYUI_WORKFLOW_ERROR' });
  });

  it('classifies pasted plain text (a traceback) as one message, with its message and hint', async () => {
    const r = await collect([
      'Traceback (most recent call last):',
      '  File "/ComfyUI/execution.py", line 496, in execute',
      'torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 6.00 GiB',
    ]);
    expect(r).toMatchObject({ lines: 1, bad: 0 });
    expect(r.output).toHaveLength(1);
    expect(r.output[0]).toMatchObject({ id: 'text', code: 'COMFYUI_OOM', category: 'recoverable', retryable: true });
    expect(String(r.output[0]?.hint)).not.toBe('');
  });

  it('tells what a line should look like when a JSON Lines line is bad', async () => {
    const r = await collect(['{"id":"ok","message":"No space left on device"}', 'CUDA out of memory']);
    expect(String(r.output[1]?.error)).toContain('expected one JSON object per line, e.g. {"id":"1"');
  });

  it('uses custom rules and prints rule, message and hint when verbose', async () => {
    const rules = compileRules([{ id: 'acme.busy', code: 'COMFYUI_OVERLOADED', when: { message: ['acme backlog'] } }]);
    const r = await collect(['{"id":"x","message":"ACME backlog is 400 jobs"}'], { rules, verbose: true });
    expect(r.output[0]).toMatchObject({ id: 'x', code: 'COMFYUI_OVERLOADED', rule: 'acme.busy' });
    expect(typeof r.output[0]?.message).toBe('string');
    expect(typeof r.output[0]?.hint).toBe('string');
  });
});

describe('comfyguard classify (built binary)', () => {
  let dir: string;
  beforeAll(async () => {
    await ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'comfyguard-classify-'));
  }, 240_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('classifies the vendored public corpus from a file, one output line per input line', async () => {
    const file = join(ROOT, 'test', 'errors', 'fixtures', 'public.jsonl');
    const r = await runCli(['classify', file]);
    expect(r.code, r.stderr).toBe(0);
    const inputs = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { id: string; code: string });
    const outputs = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { id: string; code: string; category: string; retryable: boolean });
    expect(outputs.map((o) => o.id)).toEqual(inputs.map((i) => i.id));
    expect(Object.keys(outputs[0]!).sort()).toEqual(['category', 'code', 'id', 'retryable']);
    const correct = outputs.filter((o, i) => o.code === inputs[i]!.code).length;
    expect(correct / inputs.length).toBeGreaterThanOrEqual(0.98);
  });

  it('reads stdin, exits 1 when a line was bad, and names that line', async () => {
    const child = spawn(process.execPath, [CLI, 'classify'], { cwd: ROOT, env: cliEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.stdin.end('{"id":"a","message":"HIP out of memory"}\nnot json\n{"id":"c","message":"Unauthorized: Please login first to use this node."}\n');
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).toBe(1);
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0]).toMatchObject({ id: 'a', code: 'COMFYUI_OOM' });
    expect(lines[1]).toMatchObject({ line: 2 });
    expect(lines[2]).toMatchObject({ id: 'c', code: 'COMFYUI_AUTH_ERROR' });
    expect(stderr).toMatch(/1 bad line/);
  });

  it('loads custom rules from --rules and rejects a bad rules file as usage error', async () => {
    const rules = join(dir, 'rules.json');
    writeFileSync(rules, JSON.stringify([{ id: 'acme.x', code: 'COMFYUI_DISK_FULL', when: { message: ['acme storage exhausted'] } }]));
    const input = join(dir, 'in.jsonl');
    writeFileSync(input, '{"id":"1","message":"ACME storage exhausted"}\n');
    const ok = await runCli(['classify', '--rules', rules, input]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout.trim())).toMatchObject({ id: '1', code: 'COMFYUI_DISK_FULL' });
    writeFileSync(rules, JSON.stringify([{ id: 'bad', code: 'COMFYUI_OOM', when: { message: ['(oops'] } }]));
    const bad = await runCli(['classify', '--rules', rules, input]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/rules\[0\] \("bad"\)/);
    const missing = await runCli(['classify', join(dir, 'nope.jsonl')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read/);
  });
});
