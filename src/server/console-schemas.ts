/**
 * Schemas of the operator console's routes (search, bulk retry, pool control, servers with their
 * history). Like `schemas.ts`, the same values validate, shape responses and document the API.
 */
import { z } from 'zod';
import { JobViewSchema, queryNumber } from './schemas.js';

const isoTime = () => z.string().describe('ISO 8601 time');

export const JobSummarySchema = z
  .object({
    label: z.string().nullable().describe('Idempotency key, or the output filename prefix'),
    model: z.string().nullable(),
    width: z.number().nullable(),
    height: z.number().nullable(),
    batch: z.number().nullable(),
    steps: z.number().nullable(),
    seed: z.number().nullable(),
    prompt: z.string().nullable(),
  })
  .meta({ id: 'JobSummary' });

export const SearchJobsQuerySchema = z.looseObject({
  status: z.string().max(200).optional().describe('Comma-separated statuses'),
  server: z.string().min(1).max(200).optional().describe('Jobs with an attempt on this server'),
  code: z.string().min(1).max(100).optional().describe('Jobs whose final error or any attempt has this error code'),
  q: z.string().max(200).optional().describe('Text in the id, label, model, prompt, or error'),
  since: queryNumber({ int: true, min: 0, max: 8.64e15 }).optional().describe('Created at or after (ms epoch)'),
  until: queryNumber({ int: true, min: 0, max: 8.64e15 }).optional().describe('Created before (ms epoch)'),
  limit: queryNumber({ int: true, min: 1, max: 200 }).optional().describe('Matches per page (default 50)'),
  cursor: z.string().min(1).max(2048).optional().describe('`nextCursor` of the previous page'),
});

export const SearchJobsResponseSchema = z.object({
  jobs: z.array(JobViewSchema.extend({ summary: JobSummarySchema })),
  nextCursor: z.string().nullable().describe('null when the whole store has been searched'),
  scanned: z.number().int().describe('Jobs read to answer this page'),
});

export const BulkRetryBodySchema = z
  .strictObject({ dryRun: z.boolean().optional().describe('Only count the jobs that would be retried') })
  .nullish();

export const BulkRetryResponseSchema = z.object({
  matched: z.number().int().describe('Failed or timed-out jobs whose error is retryable'),
  retried: z.number().int(),
  failed: z.array(z.object({ id: z.string(), message: z.string() })).describe('Jobs whose retry was refused'),
  truncated: z.boolean().describe('true when more jobs matched than one request retries (1000)'),
});

export const ControlSchema = z.object({ paused: z.boolean(), drained: z.array(z.string()) }).meta({ id: 'Control' });

export const DrainParamsSchema = z.object({ name: z.string().min(1).max(200) });
export const DrainBodySchema = z.strictObject({ on: z.boolean().optional().describe('false puts the server back (default true)') }).nullish();
export const DrainResponseSchema = z.object({ server: z.string(), drained: z.boolean() });

export const ServerChangeSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('health'), at: isoTime(), healthy: z.boolean(), error: z.string().nullable() }),
  z.object({ kind: z.literal('breaker'), at: isoTime(), from: z.string(), to: z.string(), failures: z.number() }),
  z.object({ kind: z.literal('drain'), at: isoTime(), drained: z.boolean() }),
]);

export const ConsoleServersSchema = z.object({
  paused: z.boolean(),
  degradation: z.string(),
  servers: z.array(
    z.object({
      name: z.string(),
      url: z.string(),
      healthy: z.boolean(),
      drained: z.boolean(),
      latencyMs: z.number().nullable(),
      vram: z.object({ total: z.number().nullable(), free: z.number().nullable() }).describe('Bytes'),
      queueRemaining: z.number().nullable(),
      breaker: z.string(),
      lastError: z.string().nullable(),
      checkedAt: isoTime().nullable(),
      tags: z.array(z.string()),
      history: z.array(ServerChangeSchema).describe('Recent health, breaker and drain changes, oldest first (since the service started)'),
    }),
  ),
});
