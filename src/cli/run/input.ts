/**
 * Inputs of `comfyguard run`: the workflow file and `--param key=value` pairs. Every problem is a
 * UsageError naming the file or the parameter.
 */
import { readFile } from 'node:fs/promises';
import type { ApiWorkflow } from '../../comfy/types.js';
import { assertApiWorkflow, WorkflowFormatError } from '../../comfy/workflow.js';
import type { JobParams } from '../../jobs/types.js';
import { UsageError } from '../usage.js';

/** Reads an API-format workflow (or a saved `POST /prompt` body `{ "prompt": … }`). */
export async function readWorkflowFile(path: string): Promise<ApiWorkflow> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    throw new UsageError(`cannot read workflow file ${JSON.stringify(path)}${typeof code === 'string' ? ` (${code})` : ''}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`workflow file ${JSON.stringify(path)} is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (value && typeof value === 'object' && !Array.isArray(value) && 'prompt' in value && typeof value.prompt === 'object') value = value.prompt;
  try {
    assertApiWorkflow(value);
  } catch (err) {
    if (err instanceof WorkflowFormatError) throw new UsageError(`workflow file ${JSON.stringify(path)}: ${err.message}`);
    throw err;
  }
  return value;
}

/** Parses repeated `--param key=value`; values become numbers, booleans or JSON when they look like it. */
export function parseParams(pairs: readonly string[]): JobParams {
  const params: JobParams = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const key = eq < 0 ? '' : pair.slice(0, eq).trim();
    if (eq < 0 || !/^[A-Za-z_][A-Za-z0-9_.]*$/.test(key)) {
      throw new UsageError(`--param ${JSON.stringify(pair)}: expected key=value, e.g. --param width=768 --param prompt="a red fox"`);
    }
    if (key in params) throw new UsageError(`--param ${JSON.stringify(pair)}: "${key}" is given twice`);
    params[key] = parseValue(pair.slice(eq + 1), pair);
  }
  return params;
}

function parseValue(raw: string, pair: string): unknown {
  const v = raw.trim();
  if (/^-?\d+(\.\d+)?(e[+-]?\d+)?$/i.test(v)) return Number(v);
  if (v === 'true' || v === 'false') return v === 'true';
  if (v.startsWith('[') || v.startsWith('{')) {
    try {
      return JSON.parse(v) as unknown;
    } catch {
      throw new UsageError(`--param ${JSON.stringify(pair)}: the value looks like JSON but does not parse`);
    }
  }
  return raw;
}
