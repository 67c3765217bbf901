/**
 * User-facing words: the registry's message and hint plus safe details (node, input, model base
 * name, module name, status). Every detail goes through the scrubber; raw evidence never does.
 */
import { closestNames } from './closest.js';
import { ERROR_REGISTRY, type ErrorCode } from './codes.js';
import type { MissingModel } from './details.js';
import type { ValidationNodeError } from './evidence.js';
import { modelBasename, safeDetail, safeServerName } from './scrub.js';

export interface RenderInput {
  code: ErrorCode;
  /** A config rule's own hint. */
  ruleHint?: string | undefined;
  nodeId?: string | undefined;
  nodeType?: string | undefined;
  exceptionType?: string | undefined;
  /** The deciding evidence text (raw; only a scrubbed line of it is used). */
  text: string;
  nodeErrors?: ValidationNodeError[] | undefined;
  missingModels?: MissingModel[] | undefined;
  missingNodeTypes?: string[] | undefined;
  /**
   * Model files the whole pool has in the missing model's folder (the guard knows them from
   * capability discovery); the closest by name are suggested. Without it, the list ComfyUI sent
   * in its validation error is used.
   */
  poolModels?: string[] | undefined;
  retryAfterMs?: number | undefined;
  httpStatus?: number | undefined;
  transportCode?: string | undefined;
  timeoutPhase?: string | undefined;
  server?: string | undefined;
  /** Include the evidence's own (scrubbed) exception line. */
  withExceptionDetail: boolean;
  /** Where in `text` the deciding rule matched, to quote the relevant line. */
  matchIndex?: number | undefined;
}

function sentence(s: string): string {
  const t = s.trim();
  return t === '' ? '' : /[.!?]$/.test(t) ? t : `${t}.`;
}

function nodeLabel(nodeId: string | undefined, nodeType: string | undefined): string {
  const id = safeDetail(nodeId, 40);
  const type = safeDetail(nodeType, 80);
  if (id && type) return `node ${id} (${type})`;
  if (id) return `node ${id}`;
  if (type) return `a node of type ${type}`;
  return '';
}

function list(items: string[], max = 3): string {
  const shown = items.slice(0, max);
  const more = items.length - shown.length;
  return `${shown.join(', ')}${more > 0 ? ` and ${more} more` : ''}`;
}

const NOISE_LINE =
  /^(?:got prompt|Traceback|File "|\.\.\.|Prompt executed in|Requested to load|loaded (?:completely|partially)|Failed to validate prompt for output|Output will be ignored|Error occurred when executing|- \*\*Node (?:ID|Type)|\* [^\n]*:$|[{}[\],]+$|\d{4}-\d\d-\d\d[ T][\d:.,]+\s*-?\s*$)/;

function lineAt(text: string, index: number): string {
  const start = text.lastIndexOf('\n', index - 1) + 1;
  const end = text.indexOf('\n', index);
  return text.slice(start, end < 0 ? undefined : end);
}

/** Strips log and report prefixes so the line says only what happened. */
function cleanLine(line: string): string {
  let l = line.trim();
  const c = l.charCodeAt(0);
  // Each prefix form starts with a known character: test that before running its regex.
  if (c >= 48 && c <= 57) l = l.replace(/^(?:\d{4}-\d\d-\d\d[ T][\d:.,]+\s*-?\s*(?:\w+\s*-\s*)*)/, '');
  if (/^[[EWID]/.test(l)) l = l.replace(/^(?:\[?(?:ERROR|WARNING|WARN|INFO|DEBUG)\]?:?(?:root:)?\s*)+/i, '');
  if (l.includes(' | ')) l = l.replace(/^[\w.-]+\s+\|\s+/, ''); // docker compose "service  | "
  if (l.startsWith('-') || l.startsWith('*') || l.startsWith('!')) {
    l = l.replace(/^-?\s*\*\*Exception Message:\*\*\s*/, '').replace(/^!!! Exception during processing !!!\s*/, '').replace(/^-\s+/, '');
  }
  if (l.includes("'message'")) {
    const quoted = /'message':\s*'([^'\n]+)'/.exec(l);
    if (quoted?.[1]) l = quoted[1];
  }
  return l.trim();
}

/**
 * The line of the evidence that says what happened: where the deciding rule matched, else the
 * final exception line, else the first line that is not log noise.
 */
function detailLine(text: string, exceptionType: string | undefined, matchIndex: number | undefined): string {
  const head = text.length > 16_384 ? text.slice(0, 16_384) : text;
  if (matchIndex !== undefined && matchIndex < head.length) {
    const l = cleanLine(lineAt(head, matchIndex));
    if (l !== '' && !NOISE_LINE.test(l)) return l;
  }
  if (head.includes('Exception Message:**') || head.includes('!!! Exception during processing !!!')) {
    const reported = /\*\*Exception Message:\*\*\s*([^\n]+)|!!! Exception during processing !!!\s*([^\n]+)/.exec(head);
    if (reported) return cleanLine(reported[1] ?? reported[2] ?? '');
  }
  if (exceptionType) {
    // The last "<Type>: message" line of a traceback.
    const short = exceptionType.split('.').pop() ?? exceptionType;
    for (const prefix of [`${exceptionType}:`, `${short}:`]) {
      let at = head.lastIndexOf(prefix);
      while (at > 0 && !/[\s]/.test(head[at - 1] ?? ' ')) at = head.lastIndexOf(prefix, at - 1);
      if (at >= 0) {
        const msg = lineAt(head, at).trim().slice(prefix.length).trim();
        if (msg) return `${short}: ${msg}`;
      }
    }
  }
  // The first line that is not log noise.
  for (let start = 0; start < head.length; ) {
    let end = head.indexOf('\n', start);
    if (end < 0) end = head.length;
    const l = cleanLine(head.slice(start, end));
    if (l !== '' && !NOISE_LINE.test(l)) return l;
    start = end + 1;
  }
  return '';
}

function validationSummary(errors: ValidationNodeError[]): string {
  const parts = errors.map((e) => {
    const where = nodeLabel(e.nodeId, e.classType);
    const input = e.input ? ` input ${safeDetail(e.input, 60)}` : '';
    const what = e.type === 'value_not_in_list' ? notInList(e) : safeDetail(e.message, 100);
    return `${where}${input}: ${what}`;
  });
  return list(parts);
}

/** `"euler_typo" is not allowed (closest allowed: euler, euler_cfg_pp, euler_ancestral; 40 in all)`. */
function notInList(e: ValidationNodeError): string {
  const received = typeof e.receivedValue === 'string' || typeof e.receivedValue === 'number' ? safeDetail(String(e.receivedValue), 80) : '';
  const head = received ? `${JSON.stringify(received)} is not allowed` : 'value not in the allowed list';
  if (!e.allowed) {
    // ComfyUI leaves out lists longer than 20 ("(list of length 42)"): say how many there are.
    const n = /\(list of length (\d+)\)/.exec(e.details)?.[1];
    return n ? `${head} (ComfyUI allows ${n} values here; GET /object_info lists them)` : head;
  }
  if (e.allowed.length === 0) return `${head} (the server allows no value here: nothing is installed for it)`;
  const names = (xs: string[]) => xs.map((x) => safeDetail(x, 80)).filter((x) => x !== '');
  if (e.allowed.length <= 6) return `${head}; allowed: ${names(e.allowed).join(', ')}`;
  const near = names(closestNames(received, e.allowed, 3));
  return `${head}; closest allowed: ${near.join(', ')} (${e.allowed.length} in all)`;
}

/** The model names to suggest for a missing one: the pool's, else what ComfyUI listed for that input. */
function suggestedModels(i: RenderInput, wanted: string): string[] {
  const m = i.missingModels?.find((x) => modelBasename(x.name) === wanted);
  const fromServer = (i.nodeErrors ?? []).find((e) => e.allowed && (m?.nodeId === undefined || e.nodeId === m.nodeId) && (m?.input === undefined || e.input === m.input))?.allowed;
  const pool = i.poolModels ?? fromServer ?? [];
  return closestNames(wanted, pool, 3)
    .map((x) => modelBasename(x))
    .filter((x) => x !== '' && x !== wanted);
}

/** Renders the user-safe message and hint of a classification. */
export function render(i: RenderInput): { message: string; hint: string } {
  const info = ERROR_REGISTRY[i.code];
  const server = safeServerName(i.server);
  const onServer = server ? `server ${server}` : 'the server';
  const where = nodeLabel(i.nodeId, i.nodeType);
  const parts: string[] = [];
  let hint = info.hint;

  switch (i.code) {
    case 'COMFYUI_MODEL_MISSING': {
      const names = [...new Set((i.missingModels ?? []).map((m) => modelBasename(m.name)).filter((n) => n !== ''))];
      if (names.length > 0) {
        parts.push(`A model file the workflow needs is not on ${onServer}: ${list(names)}.`);
        const near = suggestedModels(i, names[0]!);
        const whose = i.poolModels ? 'the pool has' : `${onServer} has`;
        if (near.length > 0) parts.push(`Closest ${whose}: ${near.join(', ')}.`);
        const folder = i.missingModels?.find((m) => m.folder)?.folder;
        hint = `The model ${list(names)} is not on ${onServer}: install it there${folder ? ` (models/${safeDetail(folder, 40)})` : ''}${near.length > 0 ? `, use one it has (closest: ${near[0]})` : ''}, or give fallback models.`;
      } else parts.push(info.message);
      break;
    }
    case 'COMFYUI_MISSING_NODE': {
      const types = (i.missingNodeTypes ?? []).map((t) => safeDetail(t, 80)).filter((t) => t !== '');
      if (types.length > 0) {
        parts.push(`The workflow uses node types that ${onServer} does not have: ${list(types, 5)}.`);
        hint = `Install the custom node${types.length > 1 ? 's' : ''} ${list(types, 5)} on ${onServer}, or route the job to a server that has ${types.length > 1 ? 'them' : 'it'}.`;
      } else parts.push(info.message);
      break;
    }
    case 'COMFYUI_INVALID_PARAMETERS':
    case 'COMFYUI_WORKFLOW_ERROR': {
      parts.push(info.message);
      const relevant = (i.nodeErrors ?? []).filter((e) => e.type !== '');
      if (relevant.length > 0) parts.push(sentence(`Problem: ${validationSummary(relevant)}`));
      break;
    }
    case 'COMFYUI_DEPENDENCY_ERROR': {
      parts.push(info.message);
      const mod = i.text.includes('No module named') ? /No module named '([\w.-]+)'/.exec(i.text)?.[1] : undefined;
      const pack = i.text.includes('custom_nodes')
        ? (/Cannot import [^\n]*?custom_nodes[\\/]+([^\\/\s]+) module/.exec(i.text)?.[1] ?? /IMPORT FAILED\):\s*\S*?custom_nodes[\\/]+([^\\/\s]+)/.exec(i.text)?.[1])
        : undefined;
      if (mod) hint = `Install the Python package that provides '${safeDetail(mod, 60)}' on ${onServer} (or the custom node's requirements); comfyguard routes the job elsewhere meanwhile.`;
      else if (pack) hint = `The custom node pack '${safeDetail(pack, 80)}' failed to import on ${onServer}: reinstall its requirements or update it; comfyguard routes the job elsewhere meanwhile.`;
      break;
    }
    default:
      parts.push(info.message);
  }

  if (where && i.code !== 'COMFYUI_INVALID_PARAMETERS') parts.push(`It happened in ${where}.`);
  if (i.withExceptionDetail && !(i.nodeErrors && i.nodeErrors.length > 0)) {
    const d = safeDetail(detailLine(i.text, i.exceptionType, i.matchIndex), 160);
    if (d) parts.push(sentence(`Details: ${d}`));
  }
  if (i.httpStatus !== undefined) parts.push(`(HTTP ${i.httpStatus})`);
  else if (i.transportCode && /^[A-Z][A-Z0-9_]{2,40}$/.test(i.transportCode)) parts.push(`(${i.transportCode})`);
  if (i.timeoutPhase && (i.code === 'COMFYUI_TIMEOUT' || i.code === 'COMFYUI_STALLED')) parts.push(`(${safeDetail(i.timeoutPhase, 20)} timeout)`);
  if (i.retryAfterMs !== undefined) parts.push(`The server asked to wait ${Math.ceil(i.retryAfterMs / 1000)} s before retrying.`);
  if (i.ruleHint !== undefined) hint = i.ruleHint;
  return { message: parts.join(' '), hint };
}
