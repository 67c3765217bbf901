/**
 * `GET /metrics`: Prometheus text exposition from the registry the telemetry layer owns.
 */
import { z } from 'zod';
import { ApiError } from '../api-error.js';
import type { ZodApp } from '../context.js';
import { ErrorResponseSchema } from '../schemas.js';

/** The part of a prom-client `Registry` the service reads. */
export interface MetricsSource {
  registry: { metrics(): Promise<string>; contentType: string };
}

/** Registers `/metrics`; without a registry it answers 404 METRICS_DISABLED. */
export function registerMetricsRoute(app: ZodApp, metrics: MetricsSource | undefined): void {
  app.get(
    '/metrics',
    {
      schema: {
        summary: 'Prometheus metrics (names prefixed comfyguard_)',
        tags: ['metrics'],
        response: {
          200: { description: 'Prometheus text format', content: { 'text/plain': { schema: z.string() } } },
          401: ErrorResponseSchema,
          404: ErrorResponseSchema,
        },
      },
    },
    async (_req, reply) => {
      if (!metrics) throw new ApiError(404, 'METRICS_DISABLED', 'metrics are not enabled in this service');
      const text = await metrics.registry.metrics();
      return reply.header('content-type', metrics.registry.contentType).serializer((s: unknown) => String(s)).send(text);
    },
  );
}
