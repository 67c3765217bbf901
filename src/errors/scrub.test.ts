import { describe, expect, it } from 'vitest';
import { classify } from './classify.js';
import { readFileSync } from 'node:fs';
import { firstLine } from './text.js';
import { modelBasename, safeDetail, safeServerName, scrubText } from './scrub.js';

/** Things a user message must never contain. */
const LEAKS: Array<[string, RegExp]> = [
  ['a Windows path', /[A-Za-z]:\\/],
  ['a Unix path', /(?:^|[\s'"(])\/(?:home|root|workspace|opt|usr|comfyui|app|ComfyUI)\b/i],
  ['an IPv4 address', /\b\d{1,3}(?:\.\d{1,3}){3}\b/],
  ['a URL', /\b[a-z]+:\/\//i],
  ['a host name', /\b(?:[a-z0-9-]+\.)+(?:com|org|net|io|ai|internal|local)\b/i],
  ['localhost', /localhost/i],
  ['a traceback', /Traceback \(most recent call last\)|File "[^"]+", line \d+/],
  ['a JS stack frame', /\bat [\w.<>]+ \(/],
  ['an API key', /sk-[A-Za-z0-9]{10,}|hf_[A-Za-z0-9]{10,}|eyJ[\w-]{10,}\./],
  ['a user name in a path', /\/home\/alice|Users\\alice/],
];

function expectClean(text: string): void {
  for (const [what, re] of LEAKS) expect(text, `${what} in: ${text}`).not.toMatch(re);
}

describe('scrubText', () => {
  it.each<[string, string, string]>([
    ['a Windows path', String.raw`Error loading C:\Users\alice\ComfyUI\models\checkpoints\x.safetensors now`, 'Error loading <path> now'],
    ['a Windows path with spaces', String.raw`Cannot import C:\ComfyUI Rebuild\custom_nodes\foo module`, 'Cannot import <path> module'],
    ['a Unix path', `No such file or directory: '/home/alice/ComfyUI/output/x.png'`, `No such file or directory: '<path>'`],
    ['a relative file path', 'cannot open output/ComfyUI_00010_.png', 'cannot open <path>'],
    ['words with a slash are not a path', 'CUDA/torch mismatch and/or driver', 'CUDA/torch mismatch and/or driver'],
    ['a URL', 'GET https://api.example.com/v1/x?token=abc failed', 'GET <url> failed'],
    ['an IPv4 with port', 'connect ECONNREFUSED 10.0.0.5:8188', 'connect ECONNREFUSED <ip>'],
    ['an IPv6 loopback', 'connect ECONNREFUSED [::1]:8188', 'connect ECONNREFUSED <ip>'],
    ['a host and port', 'dial tcp comfy-3.gpu.internal:8188: refused', 'dial tcp <host>: refused'],
    ['localhost', 'could not reach localhost:8188', 'could not reach <host>'],
    ['an e-mail', 'contact support@comfy.org', 'contact <email>'],
    ['a bearer token', 'Authorization: Bearer abcdef0123456789abcdef', 'Authorization: Bearer <redacted>'],
    ['an api key assignment', 'api_key=sk-live-1234567890abcdef1234 rejected', 'api_key=<redacted> rejected'],
    ['a prefixed key', 'key sk-proj-AbC123dEf456GhI789jKl012 is invalid', 'key <redacted> is invalid'],
    ['a Hugging Face token', 'token hf_AbCdEf1234567890GhIjKl used', 'token <redacted> used'],
    ['a JWT', 'session eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abcDEF123456 expired', 'session <redacted> expired'],
    ['a long hex secret', 'secretless 0123456789abcdef0123456789abcdef01 hash', 'secretless <redacted> hash'],
    ['traceback lines', 'Traceback (most recent call last):\n  File "/x/y.py", line 3, in f\nValueError: bad', 'ValueError: bad'],
    ['plain words stay', 'Value 0 smaller than min of 1: width', 'Value 0 smaller than min of 1: width'],
    ['exception types stay', 'torch.cuda.OutOfMemoryError: CUDA out of memory', 'torch.cuda.OutOfMemoryError: CUDA out of memory'],
    ['versions stay', 'requires torch 2.5.1 with cu124', 'requires torch 2.5.1 with cu124'],
    ['timestamps stay', 'at 17:10:56 the node failed', 'at 17:10:56 the node failed'],
  ])('%s', (_name, input, expected) => {
    expect(scrubText(input)).toBe(expected);
  });

  it('is idempotent', () => {
    const once = scrubText(String.raw`C:\Users\alice\x.png https://a.b.com/x 10.0.0.1 token=abc1234567`);
    expect(scrubText(once)).toBe(once);
  });

  it('keeps only the file name of a model and only plain server names', () => {
    expect(modelBasename(String.raw`SDXL\juggernaut v9 (fp16).safetensors`)).toBe('juggernaut v9 (fp16).safetensors');
    expect(modelBasename('/workspace/ComfyUI/models/vae/ae.safetensors')).toBe('ae.safetensors');
    expect(safeServerName('gpu-1')).toBe('gpu-1');
    expect(safeServerName('10.0.0.5:8188')).toBeUndefined();
    expect(safeServerName('comfy.example.com')).toBeUndefined();
    expect(safeServerName('http://x')).toBeUndefined();
  });
});

describe('safeDetail fast path', () => {
  /** The slow reference: always scrub. */
  function reference(text: string, max: number): string {
    const line = firstLine(scrubText(firstLine(text, max + 40)), max);
    return line.includes('<') && line.replace(/<(?:path|url|host|ip|email|redacted)>/g, '').replace(/[\s:;,.'"()-]/g, '') === '' ? '' : line;
  }

  it('gives exactly what full scrubbing gives, on corpus lines and on lines salted with sensitive fragments', () => {
    const corpusLines = readFileSync(new URL('../../test/errors/fixtures/public.jsonl', import.meta.url), 'utf8')
      .trim()
      .split('\n')
      .flatMap((l) => (JSON.parse(l) as { message: string }).message.split('\n'))
      .filter((l) => l.trim() !== '');
    const salts = [
      ' 10.0.0.5 ', ' 10.0.0.5:8188 ', ' [::1]:8188 ', ' fe80::1:2:3 ', ' gpu-3.internal:8188 ', ' api.example.com ', ' localhost ', ' LOCALHOST:8188 ',
      ' /home/alice/x.png ', String.raw` C:\Users\alice `, ' output/ComfyUI_00001_.png ', ' https://x.y/z ', ' a@b.co ', ' api_key=abc123 ',
      ' token: hunter22 ', ' Bearer abcdefgh12345 ', ' sk-AbCdEf1234567890XyZ ', ' 0123456789abcdef0123456789abcdef ', ' eyJabcdef.eyJghijkl.sigsigsig ',
      ' <b>x</b> ', ' Password = x ', ' hf_ABCDEFGH12345678ab ', " 'api_key_comfy_org': 'abc' ", ' Authorization: Basic dXNlcjpwYXNz ', ' X-Api-Key: k1 ',
    ];
    let n = 0;
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (const line of corpusLines) {
      const salted = [line];
      for (let k = 0; k < 3; k++) {
        const at = Math.floor(next() * (line.length + 1));
        const salt = salts[Math.floor(next() * salts.length)]!;
        salted.push(line.slice(0, at) + salt + line.slice(at));
      }
      for (const x of salted) {
        for (const max of [60, 160, 400]) {
          expect(safeDetail(x, max), x).toBe(reference(x, max));
          n++;
        }
      }
    }
    expect(n).toBeGreaterThan(1000);
  });
});

describe('classification messages and hints are user-safe', () => {
  const hostile = [
    { kind: 'execution_error', data: { node_id: '4', node_type: 'LoraLoader', exception_type: 'FileNotFoundError', exception_message: String.raw`[Errno 2] No such file or directory: 'C:\Users\alice\ComfyUI\models\loras\secret_client_lora.safetensors'`, traceback: ['  File "/home/alice/ComfyUI/execution.py", line 10, in execute\n    x()\n'] } },
    { kind: 'execution_error', data: { node_id: '9', node_type: 'GeminiNode', exception_type: 'Exception', exception_message: 'API Error 500 from https://api.example.com/v1/generate?key=sk-live-abcdefghijklmnop1234 (host 34.120.1.7)' } },
    { kind: 'thrown', error: Object.assign(new Error('connect ECONNREFUSED 192.168.1.20:8188'), { code: 'ECONNREFUSED' }) },
    { kind: 'text', where: 'log', message: 'Traceback (most recent call last):\n  File "/root/ComfyUI/nodes.py", line 1, in f\nModuleNotFoundError: No module named \'insightface\'' },
    { kind: 'text', where: 'log', message: 'Error handling request\n  File "/workspace/ComfyUI/server.py", line 153, in get_object_info\nIndexError: list index out of range' },
    { kind: 'text', where: 'client_side', message: 'Error: boom\n    at ComfyApi.queuePrompt (http://127.0.0.1:8188/assets/api.js:4:6373)\n    at async run (file:///home/alice/app/index.js:10:3)' },
    { kind: 'text', where: 'execution_error', message: "PermissionError: [Errno 13] Permission denied: '/home/alice/ComfyUI/output/ComfyUI_00001_.png'" },
    { kind: 'validation', body: { error: { type: 'invalid_prompt', message: 'Cannot execute because node /home/alice/evil does not exist.', details: "Node ID '#1'", extra_info: {} }, node_errors: {} } },
    { kind: 'validation', body: { error: { type: 'prompt_outputs_failed_validation', message: 'x', details: '', extra_info: {} }, node_errors: { '4': { class_type: 'CheckpointLoaderSimple', errors: [{ type: 'value_not_in_list', message: 'Value not in list', details: String.raw`ckpt_name: 'D:\models\private\client.safetensors' not in ['a.safetensors']`, extra_info: { input_name: 'ckpt_name', received_value: String.raw`D:\models\private\client.safetensors` } }] } } } },
  ];
  it.each(hostile.map((e, i) => [i, e] as const))('evidence %i', (_i, evidence) => {
    const c = classify(evidence, { context: { server: 'comfy-7.internal.example.com:8188' } });
    expectClean(c.message);
    expectClean(c.hint);
  });

  it('still names the model file (without its directories) and the missing module', () => {
    expect(classify(hostile[0]).message).toMatch(/secret_client_lora\.safetensors/);
    expect(classify(hostile[3]).hint).toMatch(/insightface/);
    expect(classify(hostile[8]).message).toMatch(/client\.safetensors/);
  });
});
