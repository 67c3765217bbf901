import { describe, expect, it } from 'vitest';
import { serverCapabilities } from '../../src/comfy/features.js';
import type { SystemStats } from '../../src/comfy/types.js';
import type { ServerProbe } from '../../src/cli/doctor/probe.js';
import { assessServer, CORE_NODES, renderLearnedMemory, renderReports } from '../../src/cli/doctor/report.js';

const GiB = 2 ** 30;

function probe(over: Partial<ServerProbe> & { stats?: Partial<SystemStats['system']>; devices?: SystemStats['devices'] } = {}): ServerProbe {
  const stats: SystemStats = {
    system: { os: 'posix', comfyui_version: '0.3.64', python_version: '3.12.3 (main)', pytorch_version: '2.8.0+cu128', ram_total: 32 * GiB, ram_free: 30 * GiB, ...over.stats },
    devices: over.devices ?? [{ name: 'cuda:0 RTX', type: 'cuda', index: 0, vram_total: 24 * GiB, vram_free: 20 * GiB, torch_vram_total: 0, torch_vram_free: 0 }],
  };
  return {
    url: 'http://gpu:8188',
    systemStats: { ok: true, value: stats, ms: 12 },
    queue: { ok: true, value: { running: 0, pending: 0 }, ms: 3 },
    nodeTypes: { ok: true, value: [...CORE_NODES, 'LoraLoader'], ms: 30 },
    checkpoints: { ok: true, value: ['sd.safetensors'], ms: 4 },
    websocket: { ok: true, value: true, ms: 8 },
    capabilities: serverCapabilities(stats),
    ...over,
  };
}

describe('assessServer', () => {
  it('finds nothing wrong with a healthy GPU server', () => {
    const r = assessServer(probe());
    expect(r).toMatchObject({ verdict: 'ok', problems: [], version: '0.3.64', latencyMs: 12, nodeTypes: 7, websocket: true });
    expect(r.features).toEqual({ clientPromptId: true, partialTargets: true, scopedInterrupt: true });
  });

  it('is unusable when unreachable, and says when auth is the reason', () => {
    const down = assessServer(probe({ systemStats: { ok: false, error: 'connect ECONNREFUSED', ms: 1 } }));
    expect(down.verdict).toBe('unusable');
    expect(down.problems[0]!.message).toBe('not reachable: connect ECONNREFUSED');
    const denied = assessServer(probe({ systemStats: { ok: false, error: 'HTTP 403', status: 403, ms: 1 } }));
    expect(denied.problems[0]!.message).toMatch(/refused us \(HTTP 403\).*auth token/);
  });

  it('is unusable when node types cannot be listed or the list is empty', () => {
    expect(assessServer(probe({ nodeTypes: { ok: false, error: 'HTTP 500', ms: 1 } })).verdict).toBe('unusable');
    expect(assessServer(probe({ nodeTypes: { ok: true, value: [], ms: 1 } })).problems[0]!.message).toContain('no node types');
  });

  it('degrades for CPU only, low free VRAM, old versions, missing core nodes, no checkpoints, a long queue and a broken WebSocket', () => {
    const messages = (p: ServerProbe) => assessServer(p).problems.map((x) => `${x.severity}: ${x.message}`);
    expect(messages(probe({ devices: [{ name: 'cpu', type: 'cpu', index: null, vram_total: 0, vram_free: 0, torch_vram_total: 0, torch_vram_free: 0 }] }))).toEqual([
      'warning: no GPU: the server runs on CPU, generation will be very slow',
    ]);
    expect(messages(probe({ devices: [{ name: 'cuda:0', type: 'cuda', index: 0, vram_total: 8 * GiB, vram_free: 0.5 * GiB, torch_vram_total: 0, torch_vram_free: 0 }] }))[0]).toMatch(
      /^warning: cuda:0: only 0\.5 GiB of 8\.0 GiB VRAM free/,
    );
    const old = probe({ stats: { comfyui_version: '0.3.40' } });
    expect(messages({ ...old, capabilities: serverCapabilities('0.3.40') })[0]).toMatch(/0\.3\.40 predates client-chosen prompt ids/);
    expect(messages(probe({ nodeTypes: { ok: true, value: ['KSampler', 'SaveImage'], ms: 1 } }))[0]).toContain('core nodes missing: CheckpointLoaderSimple, CLIPTextEncode, EmptyLatentImage, VAEDecode');
    expect(messages(probe({ checkpoints: { ok: true, value: [], ms: 1 } }))[0]).toContain('no checkpoints installed');
    expect(messages(probe({ queue: { ok: true, value: { running: 1, pending: 50 }, ms: 1 } }))[0]).toContain('50 prompts pending');
    expect(messages(probe({ websocket: { ok: false, error: 'closed', ms: 1 } }))[0]).toContain('progress falls back to polling');
    expect(assessServer(probe({ websocket: { ok: false, error: 'closed', ms: 1 } })).verdict).toBe('degraded');
  });

  it('renders a summary line that counts unusable servers', () => {
    const text = renderReports([assessServer(probe()), assessServer(probe({ url: 'http://down:1', systemStats: { ok: false, error: 'refused', ms: 1 } }))]);
    expect(text).toContain('http://gpu:8188  OK');
    expect(text).toContain('http://down:1  UNUSABLE');
    expect(text).toContain('  ERROR  not reachable: refused');
    expect(text.trimEnd().split('\n').at(-1)).toBe('2 server(s) checked: 1 unusable');
  });
});

describe('renderLearnedMemory', () => {
  it('lists per server and shape each kind of memory with its bounds in words and what taught them', () => {
    const shape = { server: 'gpu-8', shape: 'k0000abcd', label: 'sdxl: sd_xl_base_1.0.safetensors; KSampler, VAEDecode', ooms: 0, successes: 0 };
    const text = renderLearnedMemory(
      {
        entries: [
          { ...shape, kind: 'gpu', lower: 1.3, upper: 1.5, ooms: 2, successes: 1 },
          { ...shape, kind: 'cpu', lower: null, upper: 40, successes: 1 },
          { ...shape, server: 'cpu-box', shape: 'k0000ffff', label: null, kind: 'cpuDevice', lower: 2, upper: null, ooms: 1 },
          { ...shape, server: 'cpu-box', shape: 'k0000ffff', label: null, kind: 'gpu', lower: null, upper: null, ooms: 1 },
        ],
      },
      'sqlite:./cg.db',
    );
    expect(text.split('\n')).toEqual([
      'learned memory (store sqlite:./cg.db)',
      '  gpu-8',
      '    sdxl: sd_xl_base_1.0.safetensors; KSampler, VAEDecode (shape k0000abcd)',
      '      GPU: need x1.30 .. x1.50 of the estimate (2 OOM, 1 ok)',
      '      RAM (CPU tensor): need at most x40.00 of the estimate (0 OOM, 1 ok)',
      '  cpu-box',
      '    a workflow shape (shape k0000ffff)',
      '      RAM (CPU server): need at least x2.00 of the estimate (1 OOM, 0 ok)',
      '      GPU: the estimate held (its OOMs needed no more than it predicted) (1 OOM, 0 ok)',
      '',
    ]);
    expect(renderLearnedMemory({ entries: [] }, 'memory:')).toContain('nothing learned yet');
  });
});
