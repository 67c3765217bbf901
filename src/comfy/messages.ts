/**
 * WebSocket text frames -> typed messages. Known types are validated with their schema; anything
 * else (custom node types, invalid payloads, non-JSON) comes back as an `UnknownWsMessage` with the
 * reason, so nothing is dropped and nothing throws.
 */
import { describeIssues, isModelledWsType, wsDataSchemas } from './schemas.js';
import type { UnknownWsMessage, WsMessage } from './types.js';

/** Parses one text frame. Never throws. */
export function parseWsText(text: string): WsMessage | UnknownWsMessage {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { type: 'unknown', rawType: null, data: text, reason: 'not_json', issue: err instanceof Error ? err.message : String(err) };
  }
  return parseWsMessage(value);
}

/** Validates an already-parsed `{type, data}` value. Never throws. */
export function parseWsMessage(value: unknown): WsMessage | UnknownWsMessage {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { type: 'unknown', rawType: null, data: value, reason: 'invalid_payload', issue: 'frame is not a JSON object' };
  }
  const obj = value as { type?: unknown; data?: unknown };
  const rawType = typeof obj.type === 'string' ? obj.type : null;
  if (rawType === null) {
    return { type: 'unknown', rawType: null, data: value, reason: 'invalid_payload', issue: 'frame has no string "type"' };
  }
  if (!isModelledWsType(rawType)) return { type: 'unknown', rawType, data: obj.data, reason: 'unmodelled_type' };
  const parsed = wsDataSchemas[rawType].safeParse(obj.data);
  if (!parsed.success) {
    return { type: 'unknown', rawType, data: obj.data, reason: 'invalid_payload', issue: describeIssues(parsed.error) };
  }
  // The schema for `rawType` produced `data`, so the pair is a valid member of the union.
  return { type: rawType, data: parsed.data } as WsMessage;
}

/** Type guard separating modelled messages from pass-through unknown ones. */
export function isKnownWsMessage(m: WsMessage | UnknownWsMessage): m is WsMessage {
  return m.type !== 'unknown';
}
