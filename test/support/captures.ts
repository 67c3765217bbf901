/**
 * Loads the recorded ComfyUI 0.3.64 traffic (`test/comfy/captures/`, a vendored copy of
 * `shared/comfyui-captures/`) as typed events, in the order the files were recorded.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const CAPTURES_DIR = fileURLToPath(new URL('../comfy/captures/', import.meta.url));

export interface HttpEvent {
  kind: 'http';
  t_ms: number;
  method: string;
  path: string;
  label?: string;
  request_body?: unknown;
  status?: number;
  response_content_type?: string;
  response_body?: unknown;
  response_body_text?: string;
  response_body_length?: number;
  response_body_head_hex?: string;
  error?: { name: string; message: string; cause_code?: string; cause_message?: string };
}

export interface WsEvent {
  kind: 'ws';
  t_ms: number;
  socket?: string;
  data: { type: string; data: Record<string, unknown> };
}

export interface WsBinaryEvent {
  kind: 'ws_binary';
  t_ms: number;
  socket?: string;
  length: number;
  head_hex: string;
  event_type: number;
  image_format?: number;
  image_head_hex?: string;
  metadata_length?: number;
  metadata?: Record<string, unknown>;
}

export interface WsControlEvent {
  kind: 'ws_open' | 'ws_send' | 'ws_client_close' | 'ws_close' | 'ws_error';
  t_ms: number;
  socket?: string;
  path?: string;
  data?: unknown;
  code?: number;
  reason?: string;
  message?: string;
}

export interface OtherEvent {
  kind: 'process' | 'note';
  t_ms: number;
  action?: string;
  text?: string;
}

export type CaptureEvent = HttpEvent | WsEvent | WsBinaryEvent | WsControlEvent | OtherEvent;

export interface Capture {
  file: string;
  scenario: string;
  comfyui_commit: string;
  recorded_at: string;
  notes: string;
  events: CaptureEvent[];
}

/** One capture file by name (`ok_simple` or `ok_simple.json`). */
export function loadCapture(name: string): Capture {
  const file = name.endsWith('.json') ? name : `${name}.json`;
  const raw = JSON.parse(readFileSync(`${CAPTURES_DIR}${file}`, 'utf8')) as Omit<Capture, 'file'>;
  return { ...raw, file, events: [...raw.events].sort((a, b) => a.t_ms - b.t_ms) };
}

/** Every capture, in recording order (they were recorded against one server process). */
export function loadCaptures(): Capture[] {
  return readdirSync(CAPTURES_DIR)
    .filter((f) => f.endsWith('.json'))
    .map(loadCapture)
    .sort((a, b) => (a.recorded_at < b.recorded_at ? -1 : a.recorded_at > b.recorded_at ? 1 : 0));
}
