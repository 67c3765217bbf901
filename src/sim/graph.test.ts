import { describe, expect, it } from 'vitest';
import { ExecutionList, nodeSignature, type PromptGraph } from './graph.js';

const SD: PromptGraph = {
  '3': { class_type: 'KSampler', inputs: { seed: 1, model: ['4', 0], positive: ['6', 0], negative: ['7', 0], latent_image: ['5', 0] } },
  '4': { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: 'a' } },
  '5': { class_type: 'EmptyLatentImage', inputs: { width: 512 } },
  '6': { class_type: 'CLIPTextEncode', inputs: { text: 'x', clip: ['4', 1] } },
  '7': { class_type: 'CLIPTextEncode', inputs: { text: 'y', clip: ['4', 1] } },
  '8': { class_type: 'VAEDecode', inputs: { samples: ['3', 0], vae: ['4', 2] } },
  '9': { class_type: 'SaveImage', inputs: { images: ['8', 0] } },
};

function order(prompt: PromptGraph, outputs: string[], cached: string[] = []): string[] {
  const list = new ExecutionList(prompt, (id) => cached.includes(id), (id) => prompt[id]?.class_type === 'SaveImage');
  for (const o of outputs) list.addNode(o);
  const out: string[] = [];
  while (!list.isEmpty()) {
    const id = list.next() as string;
    out.push(id);
    list.complete(id);
  }
  return out;
}

describe('ExecutionList', () => {
  it('runs the default text-to-image graph in ComfyUI\'s order (hand-traced from graph.py)', () => {
    // Pending order 9,8,4,3,5,7,6; the loader goes first because it feeds the decoder of an output.
    expect(order(SD, ['9'])).toEqual(['4', '5', '7', '6', '3', '8', '9']);
  });

  it('skips cached inputs and runs output nodes as soon as they are ready', () => {
    expect(order(SD, ['9'], ['4', '5', '6', '7'])).toEqual(['3', '8', '9']);
    const blur: PromptGraph = {
      '1': { class_type: 'EmptyImage', inputs: {} },
      '9': { class_type: 'SaveImage', inputs: { images: ['13', 0] } },
      '10': { class_type: 'ImageBlur', inputs: { image: ['1', 0] } },
      '11': { class_type: 'ImageBlur', inputs: { image: ['10', 0] } },
      '12': { class_type: 'ImageBlur', inputs: { image: ['11', 0] } },
      '13': { class_type: 'ImageBlur', inputs: { image: ['12', 0] } },
    };
    expect(order(blur, ['9'])).toEqual(['1', '10', '11', '12', '13', '9']); // as recorded in interrupted.json
  });

  it('reports a dependency cycle as no next node', () => {
    const cyc: PromptGraph = { a: { class_type: 'X', inputs: { i: ['b', 0] } }, b: { class_type: 'X', inputs: { i: ['a', 0] } } };
    const list = new ExecutionList(cyc, () => false, () => false);
    list.addNode('a');
    expect(list.next()).toBeUndefined();
  });
});

describe('nodeSignature', () => {
  it('is equal for equal content whatever the node ids, and differs when an ancestor changes', () => {
    const a: PromptGraph = { '1': { class_type: 'E', inputs: { w: 64 } }, '2': { class_type: 'S', inputs: { i: ['1', 0], p: 'x' } } };
    const b: PromptGraph = { x: { class_type: 'E', inputs: { w: 64 } }, y: { class_type: 'S', inputs: { p: 'x', i: ['x', 0] } } };
    const c: PromptGraph = { '1': { class_type: 'E', inputs: { w: 65 } }, '2': { class_type: 'S', inputs: { i: ['1', 0], p: 'x' } } };
    const sig = (p: PromptGraph, id: string) => nodeSignature(p, id, () => 'False', () => false);
    expect(sig(a, '2')).toBe(sig(b, 'y'));
    expect(sig(a, '2')).not.toBe(sig(c, '2'));
    expect(sig({ '1': { class_type: 'E', inputs: { w: true } } }, '1')).toBe(sig({ '1': { class_type: 'E', inputs: { w: 1 } } }, '1'));
  });
});
