/**
 * What a job is, in the words an operator uses: model, size, batch, steps, seed and prompt text,
 * read from the workflow with the job's parameters applied. The dashboard shows it in the list and
 * on the job page, and searches it; it is a reading of common node types, not a full interpretation
 * (a custom sampler node simply leaves a field null).
 */
import type { ApiWorkflow } from '../comfy/types.js';
import type { JobRecord } from '../jobs/types.js';

export interface JobSummary {
  /** The output's filename prefix, or the idempotency key: the closest thing a job has to a name. */
  label: string | null;
  model: string | null;
  width: number | null;
  height: number | null;
  batch: number | null;
  steps: number | null;
  seed: number | null;
  /** The positive prompt text, when a text encoder holds it as a literal. */
  prompt: string | null;
}

const MODEL_INPUTS = ['ckpt_name', 'unet_name'];
const LATENT_TYPES = new Set(['EmptyLatentImage', 'EmptySD3LatentImage', 'EmptyHunyuanLatentVideo', 'EmptyImage']);
const SAMPLER_TYPES = new Set(['KSampler', 'KSamplerAdvanced', 'BasicScheduler', 'SamplerCustom']);

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function str(v: unknown): string | null {
  return typeof v === 'string' && v !== '' ? v : null;
}

/** The literal text of a prompt input, following one link to a primitive string node. */
function textOf(wf: ApiWorkflow, v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (Array.isArray(v) && typeof v[0] === 'string') {
    const src = wf[v[0]];
    const inputs = src?.inputs ?? {};
    return str(inputs.value) ?? str(inputs.text) ?? str(inputs.string);
  }
  return null;
}

/** The id of the node a sampler's `positive` input comes from (through one conditioning node, e.g. FluxGuidance). */
function positiveEncoder(wf: ApiWorkflow): string | null {
  for (const node of Object.values(wf)) {
    const pos = node.inputs.positive ?? node.inputs.conditioning;
    if (Array.isArray(pos) && typeof pos[0] === 'string') {
      const src = wf[pos[0]];
      if (src?.class_type === 'CLIPTextEncode') return pos[0];
      const inner = src?.inputs.conditioning;
      if (Array.isArray(inner) && typeof inner[0] === 'string' && wf[inner[0]]?.class_type === 'CLIPTextEncode') return inner[0];
    }
  }
  return null;
}

/** Reads a summary from a workflow (the job's original one, or the one an attempt ran). */
export function summarizeWorkflow(wf: ApiWorkflow): Omit<JobSummary, 'label'> & { prefix: string | null } {
  const out: Omit<JobSummary, 'label'> & { prefix: string | null } = { model: null, width: null, height: null, batch: null, steps: null, seed: null, prompt: null, prefix: null };
  const ids = Object.keys(wf).sort((a, b) => Number(a) - Number(b) || a.localeCompare(b));
  for (const id of ids) {
    const node = wf[id]!;
    const i = node.inputs;
    for (const k of MODEL_INPUTS) out.model ??= str(i[k]);
    if (LATENT_TYPES.has(node.class_type)) {
      out.width ??= num(i.width);
      out.height ??= num(i.height);
      out.batch ??= num(i.batch_size);
    }
    if (SAMPLER_TYPES.has(node.class_type)) out.steps ??= num(i.steps);
    out.seed ??= num(i.seed) ?? num(i.noise_seed);
    if (node.class_type === 'SaveImage' || node.class_type === 'PreviewImage') out.prefix ??= str(i.filename_prefix);
  }
  const enc = positiveEncoder(wf);
  const first = enc ?? ids.find((id) => wf[id]!.class_type === 'CLIPTextEncode') ?? null;
  if (first) out.prompt = textOf(wf, wf[first]!.inputs.text);
  return out;
}

/** The summary of a job: its workflow as it first ran (or as submitted), with its parameters' values on top. */
export function summarizeJob(job: Pick<JobRecord, 'workflow' | 'params' | 'attempts' | 'idempotencyKey'>): JobSummary {
  const first = job.attempts[0]?.workflow ?? job.workflow;
  const { prefix, ...s } = summarizeWorkflow(first);
  const p = job.params;
  return {
    label: job.idempotencyKey ?? prefix,
    model: s.model ?? str(p.ckpt_name),
    width: s.width ?? num(p.width),
    height: s.height ?? num(p.height),
    batch: s.batch ?? num(p.batch_size),
    steps: s.steps ?? num(p.steps),
    seed: s.seed ?? num(p.seed),
    prompt: s.prompt ?? str(p.prompt),
  };
}

/** True when the job matches a free-text search: id, label, model, prompt text, or error code and message. */
export function matchesText(job: Pick<JobRecord, 'id' | 'error'>, summary: JobSummary, q: string): boolean {
  const needle = q.trim().toLowerCase();
  if (needle === '') return true;
  const hay = [job.id, summary.label, summary.model, summary.prompt, job.error?.code, job.error?.message];
  return hay.some((h) => typeof h === 'string' && h.toLowerCase().includes(needle));
}
