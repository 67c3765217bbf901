/**
 * A validation environment (validate.ts) built from a server's `/object_info`, so a prompt can be
 * checked the way that server would check it before it is sent anywhere.
 */
import type { InputSpecTuple, InputTypes, ValidationEnv, ValidationNodeSpec } from './validate.js';

function isDict(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function specTuples(v: unknown): Record<string, InputSpecTuple> | undefined {
  if (!isDict(v)) return undefined;
  const out: Record<string, InputSpecTuple> = {};
  for (const [name, spec] of Object.entries(v)) {
    if (!Array.isArray(spec) || spec.length === 0) continue;
    out[name] = isDict(spec[1]) ? [spec[0], spec[1]] : [spec[0]];
  }
  return out;
}

/** The file name an upload combo value names, without ComfyUI's ` [input]` annotation. */
export function plainUploadName(value: string): string {
  return value.replace(/ \[(input|output|temp)\]$/, '');
}

/**
 * One node type of `/object_info`. Inputs with an upload widget (`image_upload`) are checked the
 * way LoadImage's own VALIDATE_INPUTS does it: the file must be on the server, or be one that
 * `hasUpload` says will be delivered before the prompt runs.
 */
export function nodeSpecFromInfo(info: unknown, hasUpload: (name: string) => boolean = () => false): ValidationNodeSpec | undefined {
  if (!isDict(info)) return undefined;
  const input = isDict(info.input) ? info.input : {};
  const types: InputTypes = {};
  const required = specTuples(input.required);
  const optional = specTuples(input.optional);
  if (required) types.required = required;
  if (optional) types.optional = optional;
  const uploads: string[] = [];
  for (const group of [required, optional]) {
    for (const [name, [type, cfg]] of Object.entries(group ?? {})) {
      if (Array.isArray(type) && cfg && (cfg.image_upload === true || cfg.upload === true)) uploads.push(name);
    }
  }
  const spec: ValidationNodeSpec = {
    outputNode: info.output_node === true,
    returnTypes: Array.isArray(info.output) ? info.output.map(String) : [],
    inputTypes: () => types,
  };
  if (uploads.length > 0) {
    spec.validateInputs = uploads;
    spec.customValidate = (values) => {
      for (const name of uploads) {
        const v = values[name];
        if (v === undefined) continue;
        const file = plainUploadName(String(v));
        const options = ((types.required?.[name] ?? types.optional?.[name])?.[0] ?? []) as unknown[];
        if (!options.includes(file) && !hasUpload(file)) return `Invalid image file: ${String(v)}`;
      }
      return true;
    };
  }
  return spec;
}

/** The validation environment of a server whose `/object_info` is `objectInfo`. */
export function objectInfoEnv(objectInfo: Record<string, unknown>, hasUpload?: (name: string) => boolean): ValidationEnv {
  const cache = new Map<string, ValidationNodeSpec | undefined>();
  return {
    spec: (classType) => {
      if (!cache.has(classType)) {
        const info = Object.prototype.hasOwnProperty.call(objectInfo, classType) ? objectInfo[classType] : undefined;
        cache.set(classType, nodeSpecFromInfo(info, hasUpload));
      }
      return cache.get(classType);
    },
  };
}
