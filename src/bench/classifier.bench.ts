/**
 * Classifications per second over the whole public error corpus and over public + extended corpora
 * (the decision and its details, then also the rendered, scrubbed message and hint), over a mix of structured evidence, and the
 * time for one 10 MB message. Single thread. The machine is shared, so each rate is reported as the median and
 * the best of many short trials, by wall clock and by this process's CPU time.
 */
import { loadavg } from 'node:os';
import { readFileSync } from 'node:fs';
import { classify } from '../errors/classify.js';
import { corpusEvidence, defaultCorpusPath, extendedCorpusPath, readCorpus } from '../errors/corpus.js';
import type { Evidence } from '../errors/evidence.js';
import { percentile, round, type BenchResult } from './harness.js';

const TRIALS = Number(process.env.BENCH_CLASSIFIER_TRIALS ?? 40);
const TRIAL_MS = 150;

interface Rates {
  medianWall: number;
  bestWall: number;
  medianCpu: number;
}

function measure(evidence: readonly unknown[], opts: { render?: boolean } = {}): Rates {
  let sink = 0;
  // Warm up: let V8 optimise the hot paths and fill the rule-shape caches.
  for (let i = 0; i < 30; i++) for (const e of evidence) sink += classify(e, opts).message.length;
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let t = 0; t < TRIALS; t++) {
    let n = 0;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    let elapsed = 0;
    while (elapsed < TRIAL_MS) {
      for (const e of evidence) sink += classify(e, opts).hint.length;
      n += evidence.length;
      elapsed = performance.now() - t0;
    }
    const c = process.cpuUsage(c0);
    wall.push(n / (elapsed / 1000));
    cpu.push(n / ((c.user + c.system) / 1e6));
  }
  if (sink < 0) throw new Error('unreachable');
  wall.sort((a, b) => a - b);
  cpu.sort((a, b) => a - b);
  return { medianWall: percentile(wall, 50), bestWall: wall[wall.length - 1] ?? 0, medianCpu: percentile(cpu, 50) };
}

function structuredMix(): Evidence[] {
  const validation: Evidence = {
    kind: 'validation',
    body: {
      error: { type: 'prompt_outputs_failed_validation', message: 'Prompt outputs failed validation', details: '', extra_info: {} },
      node_errors: {
        '4': { class_type: 'CheckpointLoaderSimple', dependent_outputs: ['9'], errors: [{ type: 'value_not_in_list', message: 'Value not in list', details: "ckpt_name: 'x.safetensors' not in []", extra_info: { input_name: 'ckpt_name', received_value: 'x.safetensors' } }] },
        '5': { class_type: 'EmptyLatentImage', dependent_outputs: ['9'], errors: [{ type: 'value_smaller_than_min', message: 'Value 8 smaller than min of 16', details: 'width', extra_info: { input_name: 'width', received_value: 8 } }] },
      },
    },
  };
  const exec = (type: string, message: string): Evidence => ({
    kind: 'execution_error',
    data: { prompt_id: 'p', node_id: '3', node_type: 'KSampler', exception_type: type, exception_message: `${message}\n`, traceback: ['  File "ComfyUI/execution.py", line 496, in execute\n'], current_inputs: {}, current_outputs: [] },
  });
  return [
    validation,
    exec('torch.OutOfMemoryError', 'CUDA out of memory. Tried to allocate 2.00 GiB.'),
    exec('IndexError', 'index 3 is out of bounds for dimension 3 with size 3'),
    exec('RuntimeError', 'CUDA error: an illegal memory access was encountered'),
    { kind: 'http', status: 429, headers: { 'retry-after': '5' }, bodyText: 'Too Many Requests' },
    { kind: 'http', status: 500, bodyText: '500 Internal Server Error\n\nServer got itself in trouble' },
    { kind: 'transport', code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:8188' },
    { kind: 'ws_close', code: 1006 },
    { kind: 'timeout', phase: 'stall' },
    { kind: 'interrupted', byOwner: false },
  ];
}

/** Runs the classifier benchmark. */
export async function run(): Promise<BenchResult> {
  const path = defaultCorpusPath();
  const corpus = readCorpus(readFileSync(path, 'utf8'));
  const corpusEv = corpus.map(corpusEvidence);
  const extended = readCorpus(readFileSync(extendedCorpusPath(), 'utf8'));
  const allEv = [...corpusEv, ...extended.map(corpusEvidence)];
  const mix = structuredMix();
  const load = loadavg()[0] ?? 0;

  const rows: Array<Record<string, string | number>> = [];
  const row = (name: string, count: number, r: Rates) =>
    rows.push({
      evidence: name,
      items: count,
      'median/s (wall)': Math.round(r.medianWall),
      'best/s (wall)': Math.round(r.bestWall),
      'median/s (cpu)': Math.round(r.medianCpu),
      'µs each (median)': round(1e6 / r.medianWall, 2),
    });
  row('public corpus: decision + details', corpusEv.length, measure(corpusEv, { render: false }));
  row('public corpus: + rendered words', corpusEv.length, measure(corpusEv));
  row('public + extended corpora: decision + details', allEv.length, measure(allEv, { render: false }));
  row('public + extended corpora: + rendered words', allEv.length, measure(allEv));
  row('structured mix: + rendered words', mix.length, measure(mix));

  const huge = `${'INFO step 17/30 sampling... '.repeat(Math.ceil((10 * 1024 * 1024) / 28))}\ntorch.OutOfMemoryError: CUDA out of memory.`;
  const times: number[] = [];
  for (let i = 0; i < 10; i++) {
    const t0 = performance.now();
    classify({ kind: 'text', where: 'log', message: huge });
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  rows.push({ evidence: '10 MB log message', items: 1, 'median/s (wall)': round(1000 / percentile(times, 50), 1), 'best/s (wall)': round(1000 / (times[0] ?? 1), 1), 'median/s (cpu)': '', 'µs each (median)': round(percentile(times, 50) * 1000, 0) });

  return {
    name: 'classifier',
    title: 'Error classifier: classifications per second, one thread (target >= 200,000/s on the corpus)',
    rows,
    notes: [
      `corpus: ${path} (${corpus.length} lines); extended: test/errors/fixtures/extended.jsonl (${extended.length} lines)`,
      '"decision + details": code, category, retryable, node, exception type, models, node types, Retry-After (render: false, as `comfyguard classify` uses); "+ rendered words" adds the scrubbed message and hint',
      `${TRIALS} trials of ${TRIAL_MS} ms per row; 1-minute load average at start: ${load.toFixed(2)} (a shared machine inflates wall time)`,
    ],
  };
}
