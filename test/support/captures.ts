/**
 * Loads the recorded ComfyUI 0.3.64 traffic (`test/comfy/captures/`, a vendored copy of
 * `shared/comfyui-captures/`) as typed events, in the order the files were recorded. The one
 * definition of the capture format; the capture server (`capture-server.ts`) replays these.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A recorded HTTP exchange (`error` instead of `status` when the connection failed). */
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

/** One recorded text frame from the server. */
export interface WsEvent {
  kind: 'ws';
  t_ms: number;
  socket?: string;
  data: { type: string; data: Record<string, unknown> };
}

/** One recorded binary frame from the server (head only; the rest is synthesised). */
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

/** A text frame the client sent. */
export interface WsSendEvent {
  kind: 'ws_send';
  t_ms: number;
  socket?: string;
  data: unknown;
}

/** A socket opening, closing or failing. */
export interface WsControlEvent {
  kind: 'ws_open' | 'ws_client_close' | 'ws_close' | 'ws_error';
  t_ms: number;
  socket?: string;
  path?: string;
  code?: number;
  reason?: string;
  message?: string;
}

/** A server process action (kill, restart) or a recorder's note. */
export interface OtherEvent {
  kind: 'process' | 'note';
  t_ms: number;
  action?: string;
  text?: string;
}

export type CaptureEvent = HttpEvent | WsEvent | WsBinaryEvent | WsSendEvent | WsControlEvent | OtherEvent;

/** One capture file; `file` is its name with `.json`. */
export interface Capture {
  file: string;
  scenario: string;
  comfyui_commit: string;
  recorded_at: string;
  notes: string;
  events: CaptureEvent[];
}

/** The folder holding the capture files (`COMFY_CAPTURES_DIR` overrides). */
export function capturesDir(): string {
  return process.env['COMFY_CAPTURES_DIR'] ?? fileURLToPath(new URL('../comfy/captures/', import.meta.url));
}

/** Names of every capture file, without `.json`. */
export function listCaptures(): string[] {
  return readdirSync(capturesDir())
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -'.json'.length))
    .sort();
}

/** One capture file by name (`ok_simple` or `ok_simple.json`), its events in time order. */
export function loadCapture(name: string): Capture {
  const file = name.endsWith('.json') ? name : `${name}.json`;
  const raw: unknown = JSON.parse(readFileSync(join(capturesDir(), file), 'utf8'));
  if (typeof raw !== 'object' || raw === null || !Array.isArray((raw as { events?: unknown }).events)) {
    throw new Error(`capture ${name}: not a capture file (no events array)`);
  }
  const capture = raw as Omit<Capture, 'file'>;
  return { ...capture, file, events: [...capture.events].sort((a, b) => a.t_ms - b.t_ms) };
}

/** Every capture, in recording order (they were recorded against one server process). */
export function loadCaptures(): Capture[] {
  return listCaptures()
    .map((name) => loadCapture(name))
    .sort((a, b) => (a.recorded_at < b.recorded_at ? -1 : a.recorded_at > b.recorded_at ? 1 : 0));
}
