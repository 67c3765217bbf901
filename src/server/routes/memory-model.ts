/**
 * `GET /api/memory-model`: what the memory model learned from OOMs and successes, per (server,
 * workflow shape), read from the store that every process sharing it writes to.
 */
import type { ServiceContext, ZodApp } from '../context.js';
import { errorResponses, MemoryModelSchema } from '../schemas.js';

/** Registers the memory model route. */
export function registerMemoryModelRoute(app: ZodApp, ctx: ServiceContext): void {
  app.get(
    '/api/memory-model',
    {
      schema: {
        summary: 'What the memory model learned, per server and workflow shape',
        description:
          'Bounds on the real memory need of each workflow shape as multiples of its estimate: an OOM gives a lower bound, a success an upper one. Routing and OOM recovery use them; every process sharing the store contributes.',
        tags: ['stats'],
        response: { 200: MemoryModelSchema, ...errorResponses(401, 503) },
      },
    },
    async () => ctx.guard.memoryModel(),
  );
}
