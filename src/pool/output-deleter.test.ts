import { describe, expect, it } from 'vitest';
import { FakeComfyApi } from './fake-api.js';
import { parseOutputDeleteRoute, PoolOutputDeleter } from './output-deleter.js';

const out = (filename: string, type = 'output') => ({ filename, subfolder: 'sub', type });

describe('parseOutputDeleteRoute', () => {
  it('reads none, image-browsing and route templates with a method', () => {
    expect(parseOutputDeleteRoute('none')).toEqual({ kind: 'none' });
    expect(parseOutputDeleteRoute('image-browsing')).toEqual({ kind: 'image-browsing' });
    expect(parseOutputDeleteRoute('/x?f={filename}')).toEqual({ kind: 'template', method: 'DELETE', path: '/x?f={filename}' });
    expect(parseOutputDeleteRoute('POST /x/{type}/{subfolder}/{filename}')).toMatchObject({ method: 'POST' });
  });

  it.each([
    ['GET /x?f={filename}', /expected "none", "image-browsing" or a route/],
    ['/x?f=1', /must contain \{filename\}/],
    ['/x?f={filename}&g={folder}', /unknown placeholder \{folder\}/],
  ])('refuses %j saying why', (raw, message) => {
    expect(() => parseOutputDeleteRoute(raw)).toThrow(message);
  });
});

describe('PoolOutputDeleter', () => {
  const fake = new FakeComfyApi('gpu');
  const deleter = (outputDelete: string, unreachable: string | null = null) =>
    new PoolOutputDeleter({ servers: [{ name: 'gpu', outputDelete }], client: () => fake, unreachable: () => unreachable });

  it('reports every file as cannot, with the reason, when the server has no delete route', async () => {
    const r = await deleter('none').deleteOutputs('gpu', [out('a.png'), out('p.png', 'temp')]);
    expect(r.map((x) => x.result)).toEqual(['cannot', 'cannot']);
    expect(r[0]).toMatchObject({ filename: 'a.png', reason: expect.stringContaining('ComfyUI has no API to delete files') });
    expect(r[1]).toMatchObject({ reason: expect.stringContaining('empties its temp folder') });
  });

  it('says cannot for files outside the output folder with the image-browsing route', async () => {
    const r = await deleter('image-browsing').deleteOutputs('gpu', [out('p.png', 'temp')]);
    expect(r).toEqual([{ ...out('p.png', 'temp'), result: 'cannot', reason: expect.stringContaining('only from the output folder') }]);
  });

  it('reports an HTTP refusal per file as failed, naming the status', async () => {
    const r = await deleter('DELETE /gone?f={filename}').deleteOutputs('gpu', [out('a.png'), out('b.png')]);
    expect(r.map((x) => x.result)).toEqual(['failed', 'failed']);
    expect(r[0]).toMatchObject({ reason: 'DELETE /gone answered HTTP 404: no such file, or no such route on the server' });
  });

  it('does not call a server the pool knows is down, and tries the next call again', async () => {
    const before = fake.calls['send'] ?? 0;
    const r = await deleter('image-browsing', 'connect ECONNREFUSED').deleteOutputs('gpu', [out('a.png')]);
    expect(r).toEqual([{ ...out('a.png'), result: 'failed', reason: 'gpu is unreachable: connect ECONNREFUSED' }]);
    expect(fake.calls['send'] ?? 0).toBe(before);
  });

  it('stops after the first unanswered request: the rest of the call is failed without trying', async () => {
    const down = new FakeComfyApi('gpu', { up: false });
    const d = new PoolOutputDeleter({ servers: [{ name: 'gpu', outputDelete: '/del?f={filename}' }], client: () => down });
    const r = await d.deleteOutputs('gpu', [out('a.png'), out('b.png'), out('c.png')]);
    expect(r.map((x) => x.result)).toEqual(['failed', 'failed', 'failed']);
    expect(r[2]).toMatchObject({ reason: 'gpu is unreachable: ECONNREFUSED' });
    expect(down.calls['send']).toBe(1);
  });

  it('answers cannot for a server it does not know (a record of a server since removed)', async () => {
    expect(await deleter('none').deleteOutputs('old-gpu', [out('a.png')])).toEqual([{ ...out('a.png'), result: 'cannot', reason: 'no server named old-gpu is configured any more' }]);
  });
});
