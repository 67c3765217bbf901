/**
 * The conformance harness itself can fail: its diff sees type, key, length and value changes,
 * and a replay against a capture that was tampered with reports the tampering.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { loadCapture, type Capture, type HttpEvent } from '../support/captures.js';
import { Replayer, diffJson } from './replay.js';

describe('diffJson', () => {
  it('reports type, key, length and value differences with their path', () => {
    const out: string[] = [];
    diffJson({ a: 1, b: [1, 2], c: { d: 'x' }, e: 'y' }, { a: '1', b: [1], c: { d: 'z', f: 1 } }, '', out);
    expect([...out].sort()).toEqual(
      [
        '<root>: keys differ (missing ["e"], extra [])',
        'a: expected number 1, got string "1"',
        'b: expected 2 items [1,2], got 1 [1]',
        'c: keys differ (missing [], extra ["f"])',
        'c.d: expected "x", got "z"',
      ].sort(),
    );
  });

  it('compares timestamps, file names and tracebacks by type only, and Python sets as sets', () => {
    const out: string[] = [];
    diffJson({ timestamp: 1, filename: 'a.png', traceback: ['x'], executed: ['1', '2'] }, { timestamp: 2, filename: 'b.png', traceback: ['y', 'z'], executed: ['2', '1'] }, '', out);
    expect(out).toEqual([]);
    diffJson({ timestamp: 1 }, { timestamp: '1' }, '', out);
    expect(out).toHaveLength(1);
  });
});

describe('Replayer negative control', () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await startSimulator({ device: 'cpu', stepMs: 0, models: { checkpoints: [] } });
  });
  afterAll(async () => {
    await sim.close();
  });

  it('reports a tampered status code, body and WebSocket message', async () => {
    const original = loadCapture('server_info');
    const tampered: Capture = structuredClone(original);
    const features = tampered.events.find((e): e is HttpEvent => e.kind === 'http' && e.path === '/features');
    if (!features) throw new Error('server_info has no /features request');
    features.status = 404;
    features.response_body = { supports_preview_metadata: false, max_upload_size: 1 };
    const flags = tampered.events.find((e) => e.kind === 'ws' && e.data.type === 'feature_flags');
    if (!flags || flags.kind !== 'ws') throw new Error('server_info has no feature_flags reply');
    flags.data.data.max_upload_size = 'big';

    const differences = await new Replayer(sim).replay(tampered);
    expect(differences).toContain('GET /features: status 200, expected 404 ({"supports_preview_metadata": true, "max_upload_size": 104857600})');
    expect(differences).toContain('GET /features: supports_preview_metadata: expected false, got true');
    expect(differences).toContain('GET /features: max_upload_size: expected 1, got 104857600');
    expect(differences.some((d) => d.startsWith('ws default message 0 (feature_flags): data.max_upload_size: expected string'))).toBe(true);
    expect(await new Replayer(sim).replay(original)).toEqual([]);
  });
});
