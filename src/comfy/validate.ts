/**
 * `POST /prompt` validation, as ComfyUI 0.3.64's `validate_prompt`/`validate_inputs` do it: the same
 * walk order, the same error types, messages, details and extra_info, the same in-place conversion
 * of widget values (`"128"` becomes `128`), and the same quirks (errors of an inner node's failure
 * are attached to that node but carry the outer input's name; every failing output is appended to
 * the `dependent_outputs` of every node that failed so far).
 */
import { PyError, pyContains, pyEquals, pyFloat, pyInt, pyStr, pyStrRepr, pyTruthy, pyTypeName } from './pyfmt.js';
import type { NodeErrorEntry, NodeValidationError } from './types.js';

/** A V1 input spec tuple: `[type]` or `[type, options]`. */
export type InputSpecTuple = [unknown] | [unknown, Record<string, unknown>];

/** A node's inputs as `/object_info` lists them. */
export interface InputTypes {
  required?: Record<string, InputSpecTuple>;
  optional?: Record<string, InputSpecTuple>;
  hidden?: Record<string, unknown>;
}

/** What validation needs to know about one node type of a server. */
export interface ValidationNodeSpec {
  outputNode: boolean;
  returnTypes: string[];
  inputTypes(): InputTypes;
  /** Inputs checked by the node's own VALIDATE_INPUTS (ComfyUI then skips range/combo checks). */
  validateInputs?: readonly string[];
  /** The node's VALIDATE_INPUTS: true, or the text ComfyUI appends to the error details. */
  customValidate?(inputs: Record<string, unknown>): true | string;
}

/** What validation needs to know about a server. */
export interface ValidationEnv {
  /** The node type, or undefined when this server does not have it. */
  spec(classType: string): ValidationNodeSpec | undefined;
}

/** Type, category and options of one input, as ComfyUI's `get_input_info` returns them. */
export function inputInfo(
  types: InputTypes,
  name: string,
): { type: unknown; category: 'required' | 'optional' | 'hidden'; extra: Record<string, unknown>; config: InputSpecTuple } | undefined {
  for (const category of ['required', 'optional'] as const) {
    const spec = types[category]?.[name];
    if (spec) return { type: spec[0], category, extra: spec[1] ?? {}, config: [spec[0], spec[1] ?? {}] };
  }
  return undefined;
}

export type ValidationResult =
  | { ok: true; outputs: string[]; nodeErrors: Record<string, NodeErrorEntry> }
  | { ok: false; error: NodeValidationError & { extra_info: Record<string, unknown> }; nodeErrors: Record<string, NodeErrorEntry> };

type Validated = [boolean, NodeValidationError[], string];

// Traceback frames ComfyUI prints for exceptions raised while validating (execution.py, 0.3.64).
const FRAME_INNER_CALL =
  '  File "ComfyUI/execution.py", line 808, in validate_inputs\n    r = await validate_inputs(prompt_id, prompt, o_id, validated)\n        ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n';
const FRAME_OUTER_CALL =
  '  File "ComfyUI/execution.py", line 1010, in validate_prompt\n    m = await validate_inputs(prompt_id, prompt, o, validated)\n        ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n';
const FRAME_LINKED_NODE =
  '  File "ComfyUI/execution.py", line 788, in validate_inputs\n    o_class_type = prompt[o_id][\'class_type\']\n                   ~~~~~~^^^^^^\n';
const FRAME_LINKED_SLOT = '  File "ComfyUI/execution.py", line 790, in validate_inputs\n    received_type = r[val[1]]\n                    ~^^^^^^^^\n';
const FRAME_NODE_INPUTS =
  '  File "ComfyUI/execution.py", line 730, in validate_inputs\n    inputs = prompt[unique_id][\'inputs\']\n             ~~~~~~~~~~~~~~~~~^^^^^^^^^^\n';

/** A Python exception raised inside validate_inputs, with the frames below the catching one. */
class ValidationException extends Error {
  constructor(
    readonly pyType: string,
    message: string,
    readonly frames: string[],
  ) {
    super(message);
  }
}

/** Raised when ComfyUI itself would crash on the body (aiohttp answers a text 500). */
export class HandlerCrash extends Error {
  constructor(
    readonly pyType: string,
    message: string,
  ) {
    super(message);
    this.name = 'HandlerCrash';
  }
}

function isDict(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Python `str(KeyError(key))`: the key's repr. */
function keyErrorText(key: unknown): string {
  return typeof key === 'string' ? pyStrRepr(key) : pyStr(key);
}

/** `d[key]` on a Python dict parsed from JSON: KeyError/TypeError exactly where Python raises them. */
function dictGet(d: unknown, key: unknown, frame: string): unknown {
  if (!isDict(d)) {
    throw new ValidationException('TypeError', `'${pyTypeName(d)}' object is not subscriptable`, [frame]);
  }
  if (Array.isArray(key) || isDict(key)) {
    throw new ValidationException('TypeError', `unhashable type: '${pyTypeName(key)}'`, [frame]);
  }
  const k = typeof key === 'string' ? key : undefined;
  if (k === undefined || !Object.prototype.hasOwnProperty.call(d, k)) {
    throw new ValidationException('KeyError', keyErrorText(key), [frame]);
  }
  return d[k];
}

/** `tuple[index]` with Python's negative indexes and errors. */
function tupleGet(t: string[], index: unknown): string {
  if (typeof index !== 'number' && typeof index !== 'boolean') {
    throw new ValidationException('TypeError', `tuple indices must be integers or slices, not ${pyTypeName(index)}`, [FRAME_LINKED_SLOT]);
  }
  const i = Number(index);
  if (!Number.isInteger(i)) {
    throw new ValidationException('TypeError', 'tuple indices must be integers or slices, not float', [FRAME_LINKED_SLOT]);
  }
  const at = i < 0 ? t.length + i : i;
  const v = t[at];
  if (at < 0 || v === undefined) throw new ValidationException('IndexError', 'tuple index out of range', [FRAME_LINKED_SLOT]);
  return v;
}

/** ComfyUI's `validate_node_input`: exact match, `*`, or an overlap of comma-separated types. */
function typesCompatible(received: unknown, expected: unknown): boolean {
  if (pyEquals(received, expected)) return true;
  if (typeof received !== 'string' || typeof expected !== 'string') return false;
  const a = new Set(received.split(',').map((s) => s.trim()));
  const b = new Set(expected.split(',').map((s) => s.trim()));
  if (a.has('*') || b.has('*')) return true;
  for (const t of a) if (b.has(t)) return true;
  return false;
}

/** Python `val < limit` between a converted widget value and a spec bound. */
function pyLess(a: unknown, b: unknown): boolean {
  if (typeof a === 'number' && typeof b === 'number') return a < b;
  if (typeof a === 'boolean' && typeof b === 'number') return Number(a) < b;
  if (typeof a === 'string' && typeof b === 'string') return a < b;
  throw new ValidationException('TypeError', `'<' not supported between instances of '${pyTypeName(a)}' and '${pyTypeName(b)}'`, []);
}

class Validator {
  private readonly validated = new Map<string, Validated>();
  private readonly visiting = new Set<string>();

  constructor(
    private readonly prompt: Record<string, unknown>,
    private readonly env: ValidationEnv,
  ) {}

  get results(): ReadonlyMap<string, Validated> {
    return this.validated;
  }

  setValidated(id: string, v: Validated): void {
    this.validated.set(id, v);
  }

  /** validate_inputs for one node; throws ValidationException where Python would raise. */
  validateNode(id: string): Validated {
    const done = this.validated.get(id);
    if (done) return done;
    if (this.visiting.has(id)) {
      throw new ValidationException('RecursionError', 'maximum recursion depth exceeded', [FRAME_INNER_CALL]);
    }
    this.visiting.add(id);
    try {
      return this.validateNodeInner(id);
    } finally {
      this.visiting.delete(id);
    }
  }

  private validateNodeInner(id: string): Validated {
    const node = dictGet(this.prompt, id, FRAME_NODE_INPUTS);
    const inputs = dictGet(node, 'inputs', FRAME_NODE_INPUTS);
    const classType = String((node as Record<string, unknown>).class_type);
    const spec = this.env.spec(classType);
    if (!spec) throw new ValidationException('KeyError', pyStrRepr(classType), [FRAME_NODE_INPUTS]);
    const types = spec.inputTypes();
    const names = [...Object.keys(types.required ?? {}), ...Object.keys(types.optional ?? {})];
    const customInputs = spec.validateInputs ?? [];
    const errors: NodeValidationError[] = [];
    let valid = true;

    for (const x of names) {
      const info = inputInfo(types, x);
      if (!info) continue;
      let present: boolean;
      try {
        present = pyContains(inputs, x);
      } catch (e) {
        throw new ValidationException('TypeError', (e as Error).message, [FRAME_NODE_INPUTS]);
      }
      if (!present) {
        if (info.category === 'required') {
          errors.push({ type: 'required_input_missing', message: 'Required input is missing', details: x, extra_info: { input_name: x } });
        }
        continue;
      }
      const inputsDict = inputs as Record<string, unknown>;
      let val = inputsDict[x];
      const config = info.config;
      if (Array.isArray(val)) {
        if (val.length !== 2) {
          errors.push({
            type: 'bad_linked_input',
            message: 'Bad linked input, must be a length-2 list of [node_id, slot_index]',
            details: x,
            extra_info: { input_name: x, input_config: config, received_value: val },
          });
          continue;
        }
        const [oId, slot] = val as [unknown, unknown];
        const linked = dictGet(this.prompt, oId, FRAME_LINKED_NODE);
        const linkedClass = String((linked as Record<string, unknown>).class_type);
        const linkedSpec = this.env.spec(linkedClass);
        if (!linkedSpec) throw new ValidationException('KeyError', pyStrRepr(linkedClass), [FRAME_LINKED_NODE]);
        const received = tupleGet(linkedSpec.returnTypes, slot);
        if (!typesCompatible(received, info.type)) {
          errors.push({
            type: 'return_type_mismatch',
            message: 'Return type mismatch between linked nodes',
            details: `${x}, received_type(${received}) mismatch input_type(${pyStr(info.type)})`,
            extra_info: { input_name: x, input_config: config, received_type: received, linked_node: val },
          });
          continue;
        }
        const linkedId = oId as string;
        try {
          const r = this.validateNode(linkedId);
          if (!r[0]) valid = false;
        } catch (e) {
          if (!(e instanceof ValidationException)) throw e;
          valid = false;
          this.validated.set(linkedId, [
            false,
            [
              {
                type: 'exception_during_inner_validation',
                message: 'Exception when validating inner node',
                details: e.message,
                extra_info: {
                  input_name: x,
                  input_config: config,
                  exception_message: e.message,
                  exception_type: e.pyType,
                  traceback: [FRAME_INNER_CALL, ...e.frames],
                  linked_node: val,
                },
              },
            ],
            linkedId,
          ]);
        }
        continue;
      }

      try {
        if (isDict(val) && '__value__' in val) {
          val = val.__value__;
          inputsDict[x] = val;
        }
        if (info.type === 'INT') val = pyInt(val);
        else if (info.type === 'FLOAT') val = pyFloat(val);
        else if (info.type === 'STRING') val = pyStr(val);
        else if (info.type === 'BOOLEAN') val = pyTruthy(val);
        inputsDict[x] = val;
      } catch (e) {
        if (!(e instanceof PyError)) throw e;
        errors.push({
          type: 'invalid_input_type',
          message: `Failed to convert an input value to a ${pyStr(info.type)} value`,
          details: `${x}, ${pyStr(val)}, ${e.message}`,
          extra_info: { input_name: x, input_config: config, received_value: val, exception_message: e.message },
        });
        continue;
      }

      if (customInputs.includes(x)) continue;
      const asFloat = info.type === 'FLOAT';
      if ('min' in info.extra && pyLess(val, info.extra.min)) {
        errors.push({
          type: 'value_smaller_than_min',
          message: `Value ${pyStr(val, asFloat)} smaller than min of ${pyStr(info.extra.min, asFloat)}`,
          details: x,
          extra_info: { input_name: x, input_config: config, received_value: val },
        });
        continue;
      }
      if ('max' in info.extra && pyLess(info.extra.max, val)) {
        errors.push({
          type: 'value_bigger_than_max',
          message: `Value ${pyStr(val, asFloat)} bigger than max of ${pyStr(info.extra.max, asFloat)}`,
          details: x,
          extra_info: { input_name: x, input_config: config, received_value: val },
        });
        continue;
      }
      if (Array.isArray(info.type)) {
        const options = info.type as unknown[];
        if (!options.some((o) => pyEquals(o, val))) {
          const big = options.length > 20;
          errors.push({
            type: 'value_not_in_list',
            message: 'Value not in list',
            details: `${x}: '${pyStr(val)}' not in ${big ? `(list of length ${options.length})` : pyStr(options)}`,
            extra_info: { input_name: x, input_config: big ? null : config, received_value: val },
          });
          continue;
        }
      }
    }

    if (spec.customValidate && customInputs.length > 0) {
      const values: Record<string, unknown> = {};
      for (const name of customInputs) values[name] = (inputs as Record<string, unknown>)[name];
      const r = spec.customValidate(values);
      if (r !== true) {
        for (const name of customInputs) {
          errors.push({ type: 'custom_validation_failed', message: 'Custom validation failed for node', details: `${name} - ${r}`, extra_info: { input_name: name } });
        }
      }
    }

    const ret: Validated = errors.length > 0 || !valid ? [false, errors, id] : [true, [], id];
    this.validated.set(id, ret);
    return ret;
  }
}

/**
 * Validates a prompt graph like ComfyUI. Mutates `prompt` the way ComfyUI does (widget values are
 * converted in place), so the queued graph matches what a real server stores. Throws HandlerCrash
 * where the real server's handler raises (non-iterable prompt, non-dict nodes...).
 */
export function validatePrompt(prompt: unknown, partialTargets: unknown, env: ValidationEnv): ValidationResult {
  const outputs: string[] = [];
  const keys = promptKeys(prompt);
  for (const x of keys) {
    const node = (prompt as Record<string, unknown>)[x];
    let hasClassType: boolean;
    try {
      hasClassType = pyContains(node, 'class_type');
    } catch (e) {
      throw new HandlerCrash('TypeError', (e as Error).message);
    }
    if (!hasClassType) {
      return {
        ok: false,
        error: { type: 'invalid_prompt', message: 'Cannot execute because a node is missing the class_type property.', details: `Node ID '#${x}'`, extra_info: {} },
        nodeErrors: {},
      };
    }
    if (!isDict(node)) throw new HandlerCrash('TypeError', 'string indices must be integers, not \'str\'');
    const classType = node.class_type;
    if (Array.isArray(classType) || isDict(classType)) throw new HandlerCrash('TypeError', `unhashable type: '${pyTypeName(classType)}'`);
    const spec = typeof classType === 'string' ? env.spec(classType) : undefined;
    if (!spec) {
      return {
        ok: false,
        error: { type: 'invalid_prompt', message: `Cannot execute because node ${pyStr(classType)} does not exist.`, details: `Node ID '#${x}'`, extra_info: {} },
        nodeErrors: {},
      };
    }
    if (spec.outputNode) {
      let targeted = true;
      if (partialTargets !== null && partialTargets !== undefined) {
        try {
          targeted = pyContains(partialTargets, x);
        } catch (e) {
          throw new HandlerCrash('TypeError', (e as Error).message);
        }
      }
      if (targeted) outputs.push(x);
    }
  }
  if (outputs.length === 0) {
    return { ok: false, error: { type: 'prompt_no_outputs', message: 'Prompt has no outputs', details: '', extra_info: {} }, nodeErrors: {} };
  }

  const validator = new Validator(prompt as Record<string, unknown>, env);
  const good: string[] = [];
  const failedOutputs: Array<[string, NodeValidationError[]]> = [];
  const nodeErrors: Record<string, NodeErrorEntry> = {};
  for (const o of outputs) {
    let valid = false;
    let reasons: NodeValidationError[] = [];
    try {
      const m = validator.validateNode(o);
      valid = m[0];
      reasons = m[1];
    } catch (e) {
      if (!(e instanceof ValidationException)) throw e;
      reasons = [
        {
          type: 'exception_during_validation',
          message: 'Exception when validating node',
          details: e.message,
          extra_info: { exception_type: e.pyType, traceback: [FRAME_OUTER_CALL, ...e.frames] },
        },
      ];
      validator.setValidated(o, [false, reasons, o]);
    }
    if (valid) {
      good.push(o);
      continue;
    }
    failedOutputs.push([o, reasons]);
    for (const [nodeId, [ok, rs]] of validator.results) {
      if (ok || rs.length === 0) continue;
      let entry = nodeErrors[nodeId];
      if (!entry) {
        const classType = String(((prompt as Record<string, Record<string, unknown>>)[nodeId] ?? {}).class_type);
        entry = { errors: rs, dependent_outputs: [], class_type: classType };
        nodeErrors[nodeId] = entry;
      }
      entry.dependent_outputs.push(o);
    }
  }
  if (good.length === 0) {
    const details = failedOutputs.flatMap(([, rs]) => rs.map((r) => `${r.message}: ${r.details}`)).join('\n');
    return {
      ok: false,
      error: { type: 'prompt_outputs_failed_validation', message: 'Prompt outputs failed validation', details, extra_info: {} },
      nodeErrors,
    };
  }
  return { ok: true, outputs: good, nodeErrors };
}

/** `for x in prompt`: the node ids, or a HandlerCrash where iterating/indexing fails in Python. */
function promptKeys(prompt: unknown): string[] {
  if (isDict(prompt)) return Object.keys(prompt);
  if (Array.isArray(prompt)) {
    if (prompt.length === 0) return [];
    throw new HandlerCrash('TypeError', `list indices must be integers or slices, not ${pyTypeName(prompt[0])}`);
  }
  if (typeof prompt === 'string') {
    if (prompt.length === 0) return [];
    throw new HandlerCrash('TypeError', 'string indices must be integers, not \'str\'');
  }
  throw new HandlerCrash('TypeError', `'${pyTypeName(prompt)}' object is not iterable`);
}
