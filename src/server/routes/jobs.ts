/**
 * The job resource: submit, read, list, retry, cancel, emergency stop and cleanup.
 */
import { z } from 'zod';
import type { ApiWorkflow } from '../../comfy/types.js';
import type { JobOptions, JobStatus } from '../../jobs/types.js';
import { safeDetail } from '../../errors/scrub.js';
import { ApiError } from '../api-error.js';
import type { ServiceContext, ZodApp } from '../context.js';
import { checkWorkflowSize } from '../body-limits.js';
import { toJobView } from '../job-view.js';
import { checkOutboundUrl, OutboundRefusedError, type OutboundPolicy } from '../../util/outbound.js';
import {
  CleanupQuerySchema,
  CleanupResponseSchema,
  EmergencyStopResponseSchema,
  errorResponses,
  IncludeQuerySchema,
  JobIdParamsSchema,
  JobListSchema,
  JobViewSchema,
  ListJobsQuerySchema,
  RetryBodySchema,
  SubmitJobBodySchema,
  SubmitJobResponseSchema,
} from '../schemas.js';

/** True for a workflow saved in ComfyUI's UI format (`nodes`/`links` arrays), which the API cannot run. */
export function isUiFormatWorkflow(w: unknown): boolean {
  if (!w || typeof w !== 'object' || Array.isArray(w)) return false;
  const o = w as Record<string, unknown>;
  return Array.isArray(o.nodes) && (Array.isArray(o.links) || 'last_node_id' in o || 'version' in o);
}

export const UI_FORMAT_MESSAGE =
  'workflow: this is a UI-format workflow (it has "nodes" and "links"); export it from ComfyUI with "Save (API Format)" / "Export (API)" and send that';

/** Refuses a webhook URL the notifier would refuse (credentials, loopback, private, metadata), naming the field. */
function checkWebhookUrl(url: string, policy: OutboundPolicy): void {
  try {
    checkOutboundUrl(url, policy);
  } catch (err) {
    if (!(err instanceof OutboundRefusedError)) throw err;
    throw new ApiError(400, 'VALIDATION_ERROR', `options.webhookUrl: ${err.message}`, { field: 'options.webhookUrl', cause: err });
  }
}

const CorruptListSchema = z.object({ corrupt: z.array(z.object({ id: z.string(), error: z.string() })) });

const ForceQuerySchema = z.looseObject({ force: z.enum(['true', 'false']).optional().describe('Same as the body\'s `force`') });

/** Registers the /api/jobs routes. */
export function registerJobRoutes(app: ZodApp, ctx: ServiceContext): void {
  const { guard } = ctx;

  app.post(
    '/api/jobs',
    {
      schema: {
        summary: 'Submit a job',
        description: 'Accepts a job and answers at once; the job is persisted before the answer. With an idempotency key, a repeat returns the existing job (200).',
        tags: ['jobs'],
        body: SubmitJobBodySchema,
        response: { 202: SubmitJobResponseSchema, 200: SubmitJobResponseSchema, ...errorResponses(400, 401, 413, 415, 503) },
      },
      preValidation: async (req) => {
        // Caught before the schema so the answer says what to do, not "expected object".
        const body = req.body as { workflow?: unknown; options?: { fallbackWorkflows?: unknown } } | undefined;
        if (body && typeof body === 'object' && isUiFormatWorkflow(body.workflow)) {
          throw new ApiError(400, 'VALIDATION_ERROR', UI_FORMAT_MESSAGE, { field: 'workflow' });
        }
        // Before the schema too: validating a 50,000-node workflow is itself the cost to avoid.
        if (body && typeof body === 'object') {
          checkWorkflowSize(body.workflow, ctx.limits.maxWorkflowNodes, 'workflow');
          const fallbacks = body.options?.fallbackWorkflows;
          if (Array.isArray(fallbacks)) fallbacks.slice(0, 10).forEach((w, i) => checkWorkflowSize(w, ctx.limits.maxWorkflowNodes, `options.fallbackWorkflows[${i}]`));
        }
      },
    },
    async (req, reply) => {
      const { workflow, params, options } = req.body;
      // The schema has checked the shapes; the guard re-checks the semantics (params that fit no node...).
      const jobOptions = (options ?? {}) as JobOptions;
      if (jobOptions.webhookUrl !== undefined) checkWebhookUrl(jobOptions.webhookUrl, ctx.webhookTargets);
      const result = await guard.submit(workflow as ApiWorkflow, { ...jobOptions, ...(params ? { params } : {}) });
      void reply.header('location', `/api/jobs/${encodeURIComponent(result.id)}`);
      return reply.code(result.created ? 202 : 200).send({ id: result.id, status: result.status, created: result.created });
    },
  );

  app.get(
    '/api/jobs',
    {
      schema: {
        summary: 'List jobs, newest first',
        tags: ['jobs'],
        querystring: ListJobsQuerySchema,
        response: { 200: JobListSchema, ...errorResponses(400, 401) },
      },
    },
    async (req) => {
      const { status, limit, cursor, include } = req.query;
      const statuses = status ? ([...new Set(status.split(',').map((s) => s.trim()))] as JobStatus[]) : undefined;
      const page = await guard.list({
        ...(statuses ? { status: statuses } : {}),
        ...(limit !== undefined ? { limit } : {}),
        ...(cursor !== undefined ? { cursor } : {}),
      });
      return {
        jobs: page.jobs.map((j) => toJobView(j, { withWorkflow: include === 'workflow' })),
        nextCursor: page.nextCursor,
        // Unreadable rows are listed, never dropped in silence: each can be removed with DELETE /api/jobs/:id.
        corrupt: (page.corrupt ?? []).map((c) => ({ id: c.id, error: safeDetail(c.error, 200) || 'the stored record cannot be read' })),
      };
    },
  );

  app.delete(
    '/api/jobs',
    {
      schema: {
        summary: 'Delete terminal jobs older than a number of hours (and, with output cleanup on, their output files)',
        description: 'With output cleanup on, `outputs` says per job and file what was deleted, what the server cannot delete (ComfyUI has no delete API; a custom node route can add one) and what failed.',
        tags: ['jobs'],
        querystring: CleanupQuerySchema,
        response: { 200: CleanupResponseSchema, ...errorResponses(400, 401) },
      },
    },
    async (req) => {
      const { olderThanHours } = req.query;
      return guard.cleanup(olderThanHours);
    },
  );

  app.get(
    '/api/jobs/corrupt',
    {
      schema: {
        summary: 'Stored jobs that cannot be read back (damaged rows), with their ids',
        description: 'Each can be removed with DELETE /api/jobs/:id.',
        tags: ['jobs'],
        response: { 200: CorruptListSchema, ...errorResponses(401) },
      },
    },
    async () => {
      return { corrupt: (await guard.listCorrupt()).map((c) => ({ id: c.id, error: safeDetail(c.error, 200) || 'the stored record cannot be read' })) };
    },
  );

  app.delete(
    '/api/jobs/:id',
    {
      schema: {
        summary: 'Remove one stored job, readable or damaged (a running job is cancelled first)',
        tags: ['jobs'],
        params: JobIdParamsSchema,
        response: { 200: z.object({ deleted: z.boolean() }), ...errorResponses(401, 404) },
      },
    },
    async (req) => {
      const deleted = await guard.deleteJob(req.params.id);
      if (!deleted) throw new ApiError(404, 'NOT_FOUND', `no job with id ${req.params.id}`, { field: 'id' });
      return { deleted };
    },
  );

  app.get(
    '/api/jobs/:id',
    {
      schema: {
        summary: 'Get a job',
        tags: ['jobs'],
        params: JobIdParamsSchema,
        querystring: IncludeQuerySchema,
        response: { 200: JobViewSchema, ...errorResponses(400, 401, 404) },
      },
    },
    async (req) => {
      const job = await guard.get(req.params.id);
      if (!job) throw new ApiError(404, 'NOT_FOUND', `no job with id ${req.params.id}`, { field: 'id' });
      return toJobView(job, { withWorkflow: req.query.include === 'workflow' });
    },
  );

  app.post(
    '/api/jobs/:id/retry',
    {
      schema: {
        summary: 'Retry a failed, timed-out or cancelled job from its original workflow',
        description: 'Refused (409 RETRY_REFUSED) for errors that retrying will not fix, unless `force` is true.',
        tags: ['jobs'],
        params: JobIdParamsSchema,
        querystring: ForceQuerySchema,
        body: RetryBodySchema,
        response: { 200: JobViewSchema, ...errorResponses(400, 401, 404, 409) },
      },
    },
    async (req) => {
      const force = req.body?.force === true || req.query.force === 'true';
      return toJobView(await guard.retry(req.params.id, { force }));
    },
  );

  app.post(
    '/api/jobs/:id/cancel',
    {
      schema: {
        summary: 'Cancel a job',
        description: 'Answers with the job once it is cancelled (or with its terminal state if it had already ended).',
        tags: ['jobs'],
        params: JobIdParamsSchema,
        response: { 200: JobViewSchema, ...errorResponses(401, 404) },
      },
    },
    async (req) => toJobView(await guard.cancel(req.params.id)),
  );

  app.post(
    '/api/emergency-stop',
    {
      schema: {
        summary: 'Cancel every job, interrupt every server and clear their queues',
        tags: ['jobs'],
        response: { 200: EmergencyStopResponseSchema, ...errorResponses(401) },
      },
    },
    async () => guard.emergencyStop(),
  );
}
