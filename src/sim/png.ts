/**
 * A minimal PNG encoder (solid-colour RGB images) and an IHDR reader, so outputs are real image
 * files any viewer opens, without an image library.
 */
import { deflateSync } from 'node:zlib';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(buf: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of buf) c = (CRC_TABLE[(c ^ b) & 0xff] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Encodes a width x height RGB image filled with one colour; `text` adds tEXt chunks (PNG metadata). */
export function solidPng(width: number, height: number, rgb: readonly [number, number, number], text: Record<string, string> = {}): Buffer {
  const w = Math.max(1, Math.round(width));
  const h = Math.max(1, Math.round(height));
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type RGB
  const row = Buffer.alloc(1 + w * 3);
  for (let x = 0; x < w; x++) row.set(rgb.map((c) => Math.max(0, Math.min(255, Math.round(c)))), 1 + x * 3);
  const raw = Buffer.alloc(row.length * h);
  for (let y = 0; y < h; y++) row.copy(raw, y * row.length);
  const texts = Object.entries(text).map(([k, v]) => chunk('tEXt', Buffer.concat([Buffer.from(k, 'latin1'), Buffer.from([0]), Buffer.from(v, 'utf8')])));
  return Buffer.concat([SIGNATURE, chunk('IHDR', ihdr), ...texts, chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

/** Width, height and whether the image has alpha, from a PNG header; undefined if not a PNG. */
export function pngInfo(data: Uint8Array): { width: number; height: number; alpha: boolean } | undefined {
  if (data.length < 26 || !SIGNATURE.equals(Buffer.from(data.subarray(0, 8)))) return undefined;
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const colourType = b[25] ?? 0;
  return { width: b.readUInt32BE(16), height: b.readUInt32BE(20), alpha: colourType === 4 || colourType === 6 };
}
