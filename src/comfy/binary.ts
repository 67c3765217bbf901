/**
 * Binary WebSocket frames: `[u32 BE event type][payload]`.
 * 1 = preview `[u32 format 1 JPEG / 2 PNG][image]`; 4 = preview with metadata
 * `[u32 json_len][json][image]`; 3 = text `[u32 node_id_len][node_id][text]`. Anything else, and
 * any truncated or inconsistent frame, is `unknown_binary` with its bytes: decoding never throws.
 */
import type { BinaryFrame } from './types.js';

const utf8 = new TextDecoder('utf-8');

/** Event type numbers of binary frames (ComfyUI `protocol.py`). */
export const BinaryEventType = { PREVIEW_IMAGE: 1, TEXT: 3, PREVIEW_IMAGE_WITH_METADATA: 4 } as const;

/**
 * Decodes one binary frame. Reads through a DataView over the frame's own window
 * (`byteOffset`/`byteLength`): ws hands out Buffers that are views into a larger ArrayBuffer.
 */
export function decodeBinaryFrame(frame: Uint8Array): BinaryFrame {
  if (frame.byteLength < 4) return unknownFrame(-1, frame);
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const eventType = view.getUint32(0, false);
  switch (eventType) {
    case BinaryEventType.PREVIEW_IMAGE: {
      if (frame.byteLength < 8) return unknownFrame(eventType, frame);
      const formatCode = view.getUint32(4, false);
      const format = formatCode === 1 ? 'jpeg' : formatCode === 2 ? 'png' : 'unknown';
      return { kind: 'preview', eventType: 1, format, formatCode, image: frame.subarray(8) };
    }
    case BinaryEventType.PREVIEW_IMAGE_WITH_METADATA: {
      if (frame.byteLength < 8) return unknownFrame(eventType, frame);
      const jsonLength = view.getUint32(4, false);
      if (8 + jsonLength > frame.byteLength) return unknownFrame(eventType, frame);
      let metadata: unknown;
      try {
        metadata = JSON.parse(utf8.decode(frame.subarray(8, 8 + jsonLength)));
      } catch {
        return unknownFrame(eventType, frame);
      }
      if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) return unknownFrame(eventType, frame);
      return { kind: 'preview_with_metadata', eventType: 4, metadata: metadata as Record<string, unknown>, image: frame.subarray(8 + jsonLength) };
    }
    case BinaryEventType.TEXT: {
      if (frame.byteLength < 8) return unknownFrame(eventType, frame);
      const idLength = view.getUint32(4, false);
      if (8 + idLength > frame.byteLength) return unknownFrame(eventType, frame);
      return {
        kind: 'text',
        eventType: 3,
        nodeId: utf8.decode(frame.subarray(8, 8 + idLength)),
        text: utf8.decode(frame.subarray(8 + idLength)),
      };
    }
    default:
      return unknownFrame(eventType, frame);
  }
}

function unknownFrame(eventType: number, bytes: Uint8Array): BinaryFrame {
  return { kind: 'unknown_binary', eventType, bytes };
}

/** MIME type of a decoded preview, when known. */
export function previewMimeType(frame: BinaryFrame): string | undefined {
  if (frame.kind === 'preview') return frame.format === 'jpeg' ? 'image/jpeg' : frame.format === 'png' ? 'image/png' : undefined;
  if (frame.kind === 'preview_with_metadata') return typeof frame.metadata.image_type === 'string' ? frame.metadata.image_type : undefined;
  return undefined;
}

/** Builds a binary frame (the inverse of `decodeBinaryFrame`), for fakes and simulators. */
export function encodeBinaryFrame(
  frame:
    | { kind: 'preview'; formatCode: number; image: Uint8Array }
    | { kind: 'preview_with_metadata'; metadata: Record<string, unknown> | string; image: Uint8Array }
    | { kind: 'text'; nodeId: string; text: string },
): Buffer {
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n, 0);
    return b;
  };
  switch (frame.kind) {
    case 'preview':
      return Buffer.concat([u32(1), u32(frame.formatCode), frame.image]);
    case 'preview_with_metadata': {
      const json = Buffer.from(typeof frame.metadata === 'string' ? frame.metadata : JSON.stringify(frame.metadata), 'utf8');
      return Buffer.concat([u32(4), u32(json.byteLength), json, frame.image]);
    }
    case 'text': {
      const id = Buffer.from(frame.nodeId, 'utf8');
      return Buffer.concat([u32(3), u32(id.byteLength), id, Buffer.from(frame.text, 'utf8')]);
    }
  }
}
