import { describe, expect, it } from 'vitest';
import { SimConfigError } from './errors.js';
import { parseModelsSpec, parseSize, resolveOptions } from './options.js';

describe('simulator options', () => {
  it('parses sizes in bytes and binary or decimal units', () => {
    expect(parseSize('24GiB', 'vram')).toBe(24 * 2 ** 30);
    expect(parseSize('512 MiB', 'vram')).toBe(512 * 2 ** 20);
    expect(parseSize('8GB', 'vram')).toBe(8e9);
    expect(parseSize(1024, 'vram')).toBe(1024);
    expect(parseSize('1.5gib', 'vram')).toBe(1.5 * 2 ** 30);
  });

  it('names the option in size errors', () => {
    expect(() => parseSize('lots', '--vram')).toThrow(SimConfigError);
    expect(() => parseSize('lots', '--vram')).toThrow(/^--vram: "lots" is not a size/);
    expect(() => parseSize('8 parsecs', 'vram')).toThrow(/vram/);
    expect(() => parseSize(0, 'ram')).toThrow(/^ram: /);
  });

  it('parses the --models spec and rejects bad parts', () => {
    expect(parseModelsSpec('checkpoints=a.safetensors, b.ckpt;loras=x.safetensors')).toEqual({ checkpoints: ['a.safetensors', 'b.ckpt'], loras: ['x.safetensors'] });
    expect(parseModelsSpec('vae=')).toEqual({ vae: [] });
    expect(() => parseModelsSpec('checkpoints')).toThrow(/"checkpoints" must be folder=/);
    expect(() => parseModelsSpec('loras=a;loras=b')).toThrow(/folder "loras" is given twice/);
    expect(() => parseModelsSpec('loras=../x')).toThrow(/must be a relative name/);
  });

  it('applies the documented defaults and keeps default folders not overridden', () => {
    const o = resolveOptions({ models: { checkpoints: ['only.safetensors'] } });
    expect(o).toMatchObject({ port: 0, host: '127.0.0.1', vram: 24 * 2 ** 30, stepMs: 5, seed: 1, version: '0.3.64', crashDowntimeMs: 200, device: 'cuda' });
    expect(o.models.checkpoints).toEqual(['only.safetensors']);
    expect(o.models.loras?.length).toBeGreaterThan(0);
    expect(() => resolveOptions({ port: 70000 })).toThrow(/^port: /);
    expect(() => resolveOptions({ stepMs: -1 })).toThrow(/^stepMs: /);
  });
});
