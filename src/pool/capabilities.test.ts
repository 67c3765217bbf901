import { describe, expect, it } from 'vitest';
import { ComfyRequestError } from '../comfy/errors.js';
import { discoverCapabilities, hasModel, makeCapabilities, missingFrom, workflowNeeds } from './capabilities.js';
import { FakeComfyApi, txt2img } from './fake-api.js';

const now = () => 1_000;

describe('workflowNeeds', () => {
  it('lists class types and literal model references once each', () => {
    const wf = txt2img('a.safetensors', { lora: 'l.safetensors' });
    wf['12'] = { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: 'a.safetensors' } };
    const needs = workflowNeeds(wf);
    expect(needs.nodeTypes).toEqual(['CLIPTextEncode', 'CheckpointLoaderSimple', 'EmptyLatentImage', 'KSampler', 'LoraLoader', 'SaveImage', 'VAEDecode']);
    expect(needs.models).toEqual([
      { folder: 'checkpoints', aliases: [], name: 'a.safetensors' },
      { folder: 'loras', aliases: [], name: 'l.safetensors' },
    ]);
  });
});

describe('capability matching', () => {
  it('finds models in legacy alias folders (unet for diffusion_models)', () => {
    const caps = makeCapabilities(['UNETLoader'], { unet: ['flux.safetensors'] }, 0);
    expect(hasModel(caps, 'diffusion_models', 'flux.safetensors', ['unet'])).toBe(true);
    expect(hasModel(caps, 'diffusion_models', 'flux.safetensors')).toBe(false);
    const wf = { '1': { class_type: 'UNETLoader', inputs: { unet_name: 'flux.safetensors', weight_dtype: 'default' } } };
    expect(missingFrom(caps, workflowNeeds(wf))).toEqual({ nodeTypes: [], models: [] });
  });
});

describe('discoverCapabilities', () => {
  it('reads node types and every model folder', async () => {
    const api = new FakeComfyApi('a', { models: { checkpoints: ['x.ckpt'], loras: ['y.safetensors'] } });
    const caps = await discoverCapabilities(api, { now });
    expect(caps.nodeTypes.has('KSampler')).toBe(true);
    expect([...caps.models]).toEqual([
      ['checkpoints', ['x.ckpt']],
      ['loras', ['y.safetensors']],
    ]);
    expect(caps.discoveredAt).toBe(1_000);
  });

  it('leaves out a folder that fails to list instead of failing the whole discovery', async () => {
    const api = new FakeComfyApi('a', { models: { checkpoints: ['x.ckpt'] } });
    api.getModelFolders = async () => ['checkpoints', 'gone'];
    const caps = await discoverCapabilities(api, { now });
    expect([...caps.models.keys()]).toEqual(['checkpoints']);
  });

  it('reads class names from the body when a definition fails the strict response schema', async () => {
    const api = new FakeComfyApi('a');
    api.getObjectInfo = async () => {
      throw new ComfyRequestError({ kind: 'invalid_response', message: 'response does not match the protocol', body: { KSampler: { output_tooltips: [null] }, SaveImage: {} } });
    };
    const caps = await discoverCapabilities(api, { now });
    expect([...caps.nodeTypes]).toEqual(['KSampler', 'SaveImage']);
  });

  it('fails on an unreachable server or an empty object_info', async () => {
    await expect(discoverCapabilities(new FakeComfyApi('a', { up: false }), { now })).rejects.toThrow('ECONNREFUSED');
    await expect(discoverCapabilities(new FakeComfyApi('a', { nodeTypes: [] }), { now })).rejects.toThrow('object_info is empty');
  });
});
