/**
 * Conformance: every recorded ComfyUI 0.3.64 capture replayed against one simulator, in recording
 * order (the recordings were made against one server process, so queue numbers, caches and history
 * carry over from file to file). The simulator runs like the recorded server: `--cpu`, no model
 * files, 24 GiB of RAM.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { loadCaptures } from '../support/captures.js';
import { Replayer } from './replay.js';

const NO_MODELS = Object.fromEntries(['checkpoints', 'loras', 'vae', 'diffusion_models', 'text_encoders', 'upscale_models', 'embeddings'].map((f) => [f, []]));

describe('the simulator replays every recorded ComfyUI capture', () => {
  let sim: Simulator;
  let replayer: Replayer;

  beforeAll(async () => {
    sim = await startSimulator({ device: 'cpu', ram: '24GiB', stepMs: 0, models: NO_MODELS });
    replayer = new Replayer(sim);
  });

  afterAll(async () => {
    await sim?.close();
  });

  for (const capture of loadCaptures()) {
    it(`matches ${capture.file}`, async () => {
      const differences = await replayer.replay(capture);
      expect(differences).toEqual([]);
    });
  }
});
