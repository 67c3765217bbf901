import { describe, expect, it } from 'vitest';
import type { ApiWorkflow, ObjectInfo } from './types.js';
import {
  WorkflowFormatError,
  assertApiWorkflow,
  classTypes,
  isApiWorkflow,
  linksOf,
  outputNodeIds,
  referencedModels,
  topologicalOrder,
  upstreamOf,
} from './workflow.js';

/** SD1.5 txt2img with a LoRA, plus an upscaler branch with its own output. */
const wf: ApiWorkflow = {
  '9': { class_type: 'SaveImage', inputs: { images: ['8', 0], filename_prefix: 'x' } },
  '4': { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: 'v1-5-pruned-emaonly.safetensors' } },
  '10': { class_type: 'LoraLoader', inputs: { model: ['4', 0], clip: ['4', 1], lora_name: 'detail.safetensors', strength_model: 1, strength_clip: 1 } },
  '6': { class_type: 'CLIPTextEncode', inputs: { text: 'a cat', clip: ['10', 1] } },
  '7': { class_type: 'CLIPTextEncode', inputs: { text: '', clip: ['10', 1] } },
  '5': { class_type: 'EmptyLatentImage', inputs: { width: 512, height: 512, batch_size: 1 } },
  '3': { class_type: 'KSampler', inputs: { model: ['10', 0], positive: ['6', 0], negative: ['7', 0], latent_image: ['5', 0], seed: 1, steps: 20, cfg: 7, sampler_name: 'euler', scheduler: 'normal', denoise: 1 } },
  '8': { class_type: 'VAEDecode', inputs: { samples: ['3', 0], vae: ['4', 2] } },
  '11': { class_type: 'UpscaleModelLoader', inputs: { model_name: '4x-UltraSharp.pth' } },
  '12': { class_type: 'ImageUpscaleWithModel', inputs: { upscale_model: ['11', 0], image: ['8', 0] } },
  '13': { class_type: 'PreviewImage', inputs: { images: ['12', 0] } },
};

function problemOf(value: unknown): string | undefined {
  try {
    assertApiWorkflow(value);
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(WorkflowFormatError);
    expect((err as WorkflowFormatError).code).toBe('COMFYUI_WORKFLOW_ERROR');
    return (err as WorkflowFormatError).problem;
  }
}

describe('API-format detection', () => {
  it('accepts an API-format graph', () => {
    expect(isApiWorkflow(wf)).toBe(true);
    expect(problemOf(wf)).toBeUndefined();
  });

  it('names the problem of everything else', () => {
    expect(problemOf([])).toBe('not_an_object');
    expect(problemOf('{"1":{}}')).toBe('not_an_object');
    expect(problemOf({ last_node_id: 9, last_link_id: 9, nodes: [{ id: 1, type: 'SaveImage' }], links: [] })).toBe('ui_format');
    expect(problemOf({})).toBe('empty');
    expect(problemOf({ '1': 'SaveImage' })).toBe('node_not_an_object');
    expect(problemOf({ '1': { inputs: {} } })).toBe('missing_class_type');
    expect(problemOf({ '1': { class_type: 'SaveImage', inputs: [] } })).toBe('inputs_not_an_object');
    expect(problemOf({ '1': { class_type: 'SaveImage', inputs: { images: ['42', 0] } } })).toBe('link_to_missing_node');
  });

  it('explains a UI-format graph in the message and names the node for node problems', () => {
    expect(() => assertApiWorkflow({ nodes: [], links: [] })).toThrow(/UI format.*API/);
    try {
      assertApiWorkflow({ '1': { class_type: 'A', inputs: {} }, '2': { inputs: {} } });
    } catch (err) {
      expect((err as WorkflowFormatError).nodeId).toBe('2');
      expect((err as Error).message).toContain('node "2" has no "class_type"');
    }
  });
});

describe('graph helpers', () => {
  const before = structuredClone(wf);

  it('lists distinct class types, sorted', () => {
    expect(classTypes(wf)).toEqual([
      'CLIPTextEncode', 'CheckpointLoaderSimple', 'EmptyLatentImage', 'ImageUpscaleWithModel', 'KSampler', 'LoraLoader',
      'PreviewImage', 'SaveImage', 'UpscaleModelLoader', 'VAEDecode',
    ]);
  });

  it('lists links as [source, slot] -> node.input; literal lists are not links', () => {
    const links = linksOf({ ...wf, '20': { class_type: 'X', inputs: { a: ['8', 0], list: [1, 2], str: ['a', 'b'], float: ['8', 0.5] } } });
    expect(links.filter((l) => l.to === '20')).toEqual([{ from: '8', slot: 0, to: '20', input: 'a' }]);
    expect(links.filter((l) => l.to === '3').map((l) => l.input)).toEqual(['model', 'positive', 'negative', 'latent_image']);
  });

  it('finds everything upstream of the given nodes, inclusive', () => {
    expect(upstreamOf(wf, ['9']).sort()).toEqual(['10', '3', '4', '5', '6', '7', '8', '9'].sort());
    expect(upstreamOf(wf, ['11', 'missing'])).toEqual(['11']);
  });

  it('orders nodes after their inputs, and throws on a cycle', () => {
    const order = topologicalOrder(wf);
    const pos = new Map(order.map((id, i) => [id, i]));
    expect(order).toHaveLength(Object.keys(wf).length);
    for (const l of linksOf(wf)) expect(pos.get(l.from)).toBeLessThan(pos.get(l.to) ?? -1);
    const cyclic: ApiWorkflow = { a: { class_type: 'A', inputs: { x: ['b', 0] } }, b: { class_type: 'B', inputs: { x: ['a', 0] } }, c: { class_type: 'C', inputs: {} } };
    expect(() => topologicalOrder(cyclic)).toThrow(/cycle through nodes "a", "b"/);
  });

  it('finds output nodes from the built-in list, or from object_info output_node', () => {
    expect(outputNodeIds(wf)).toEqual(['9', '13']);
    const info = { PreviewImage: { output_node: false }, SaveImage: { output_node: true } } as unknown as ObjectInfo;
    expect(outputNodeIds(wf, info)).toEqual(['9']);
    expect(outputNodeIds({ '1': { class_type: 'MyCustomSaver', inputs: {} } })).toEqual([]);
    expect(outputNodeIds({ '1': { class_type: 'MyCustomSaver', inputs: {} } }, { MyCustomSaver: { output_node: true } } as unknown as ObjectInfo)).toEqual(['1']);
  });

  it('lists literal model references with their folders', () => {
    expect(referencedModels(wf)).toEqual([
      { nodeId: '4', classType: 'CheckpointLoaderSimple', input: 'ckpt_name', folder: 'checkpoints', aliases: [], name: 'v1-5-pruned-emaonly.safetensors' },
      { nodeId: '10', classType: 'LoraLoader', input: 'lora_name', folder: 'loras', aliases: [], name: 'detail.safetensors' },
      { nodeId: '11', classType: 'UpscaleModelLoader', input: 'model_name', folder: 'upscale_models', aliases: [], name: '4x-UltraSharp.pth' },
    ]);
    const flux: ApiWorkflow = {
      '10': { class_type: 'VAELoader', inputs: { vae_name: 'ae.safetensors' } },
      '11': { class_type: 'DualCLIPLoader', inputs: { clip_name1: 't5xxl.safetensors', clip_name2: 'clip_l.safetensors', type: 'flux' } },
      '12': { class_type: 'UNETLoader', inputs: { unet_name: 'flux1-dev.safetensors', weight_dtype: 'default' } },
      '13': { class_type: 'ControlNetLoader', inputs: { control_net_name: 'canny.safetensors' } },
      '14': { class_type: 'CLIPVisionLoader', inputs: { clip_name: 'vit-h.safetensors' } },
      '15': { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: ['99', 0] } },
      '99': { class_type: 'PrimitiveString', inputs: { value: 'linked.safetensors' } },
    };
    expect(referencedModels(flux).map((r) => [r.nodeId, r.input, r.folder, r.aliases, r.name])).toEqual([
      ['10', 'vae_name', 'vae', [], 'ae.safetensors'],
      ['11', 'clip_name1', 'text_encoders', ['clip'], 't5xxl.safetensors'],
      ['11', 'clip_name2', 'text_encoders', ['clip'], 'clip_l.safetensors'],
      ['12', 'unet_name', 'diffusion_models', ['unet'], 'flux1-dev.safetensors'],
      ['13', 'control_net_name', 'controlnet', ['t2i_adapter'], 'canny.safetensors'],
      ['14', 'clip_name', 'clip_vision', [], 'vit-h.safetensors'],
    ]);
  });

  it('never mutates its input', () => {
    classTypes(wf);
    linksOf(wf);
    upstreamOf(wf, ['9', '13']);
    topologicalOrder(wf);
    outputNodeIds(wf);
    referencedModels(wf);
    assertApiWorkflow(wf);
    expect(wf).toEqual(before);
  });
});
