import { describe, expect, it } from 'vitest';
import { decodeBinaryFrame, encodeBinaryFrame, previewMimeType } from './binary.js';

const u32 = (n: number) => [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
const PNG_HEAD = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Copies `bytes` into the middle of a larger ArrayBuffer and returns a view of just them, as ws does. */
function sliceOfBiggerBuffer(bytes: number[], garbageBefore = 13, garbageAfter = 7): Buffer {
  const big = new ArrayBuffer(garbageBefore + bytes.length + garbageAfter);
  const all = new Uint8Array(big);
  all.fill(0xee);
  all.set(bytes, garbageBefore);
  return Buffer.from(big, garbageBefore, bytes.length);
}

describe('decodeBinaryFrame', () => {
  it('decodes a type-1 PNG preview with the image starting at byte 8', () => {
    const frame = decodeBinaryFrame(Buffer.from([...u32(1), ...u32(2), ...PNG_HEAD, 1, 2, 3]));
    expect(frame).toMatchObject({ kind: 'preview', eventType: 1, format: 'png', formatCode: 2 });
    expect(frame.kind === 'preview' && [...frame.image]).toEqual([...PNG_HEAD, 1, 2, 3]);
    expect(previewMimeType(frame)).toBe('image/png');
  });

  it('decodes a type-1 JPEG preview and keeps an unknown format code', () => {
    expect(decodeBinaryFrame(Buffer.from([...u32(1), ...u32(1), 0xff, 0xd8]))).toMatchObject({ format: 'jpeg', formatCode: 1 });
    expect(decodeBinaryFrame(Buffer.from([...u32(1), ...u32(9), 0]))).toMatchObject({ kind: 'preview', format: 'unknown', formatCode: 9 });
  });

  it('reads the header at the view offset when the Buffer is a slice of a bigger ArrayBuffer (type 1)', () => {
    const buf = sliceOfBiggerBuffer([...u32(1), ...u32(2), ...PNG_HEAD]);
    expect(buf.byteOffset).toBe(13);
    const frame = decodeBinaryFrame(buf);
    expect(frame).toMatchObject({ kind: 'preview', eventType: 1, format: 'png' });
    expect(frame.kind === 'preview' && [...frame.image]).toEqual(PNG_HEAD);
  });

  it('reads metadata and image at the right offsets in a sliced type-4 frame', () => {
    const meta = { node_id: '2', prompt_id: 'p-1', display_node_id: '2', parent_node_id: null, real_node_id: '2', image_type: 'image/png' };
    const json = [...Buffer.from(JSON.stringify(meta), 'utf8')];
    const buf = sliceOfBiggerBuffer([...u32(4), ...u32(json.length), ...json, ...PNG_HEAD, 42]);
    const frame = decodeBinaryFrame(buf);
    expect(frame.kind).toBe('preview_with_metadata');
    if (frame.kind !== 'preview_with_metadata') return;
    expect(frame.metadata).toEqual(meta);
    expect([...frame.image]).toEqual([...PNG_HEAD, 42]);
    expect(previewMimeType(frame)).toBe('image/png');
  });

  it('decodes a type-3 text frame (node id, then text, UTF-8)', () => {
    expect(decodeBinaryFrame(encodeBinaryFrame({ kind: 'text', nodeId: '12', text: 'Téléchargement…' }))).toEqual({
      kind: 'text',
      eventType: 3,
      nodeId: '12',
      text: 'Téléchargement…',
    });
  });

  it('returns unknown_binary, never throws, for other types and truncated or inconsistent frames', () => {
    const cases: Array<[number[], number]> = [
      [[], -1],
      [[0, 0, 1], -1],
      [[...u32(2), 1, 2, 3, 4, 5], 2],
      [[...u32(1), 0, 0], 1],
      [[...u32(4), ...u32(100), 123, 125], 4],
      [[...u32(4), ...u32(3), 0x6e, 0x6f, 0x21], 4],
      [[...u32(4), ...u32(2), 0x5b, 0x5d], 4],
      [[...u32(3), ...u32(50), 65], 3],
    ];
    for (const [bytes, eventType] of cases) {
      const frame = decodeBinaryFrame(Buffer.from(bytes));
      expect(frame).toMatchObject({ kind: 'unknown_binary', eventType });
      expect(frame.kind === 'unknown_binary' && [...frame.bytes]).toEqual(bytes);
    }
  });

  it('round-trips the encoder for every known type', () => {
    const image = new Uint8Array([1, 2, 3]);
    expect(decodeBinaryFrame(encodeBinaryFrame({ kind: 'preview', formatCode: 1, image }))).toMatchObject({ kind: 'preview', format: 'jpeg' });
    expect(decodeBinaryFrame(encodeBinaryFrame({ kind: 'preview_with_metadata', metadata: { node_id: '1' }, image }))).toMatchObject({
      kind: 'preview_with_metadata',
      metadata: { node_id: '1' },
    });
  });
});
