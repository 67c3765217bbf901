/**
 * The ComfyUI-compatible endpoint under `/comfy`: give `http://host:port/comfy` to an existing
 * ComfyUI client as its server URL and its jobs run through the guard (retries, recovery,
 * failover) while the client sees ComfyUI's own REST and WebSocket shapes.
 *
 * Differences from a real ComfyUI server: `prompt_id` is the guard's job id unless the client
 * chose one; `partial_execution_targets` is accepted and ignored (the whole graph runs); history is
 * never deleted (jobs are cleaned up by the guard); `/free` is a no-op; an interrupt without a
 * `prompt_id` cancels the running jobs of the calling client (`?clientId=`), or every running job.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import websocket from '@fastify/websocket';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { ApiWorkflow, HistoryMap } from '../../comfy/types.js';
import { isTerminal, type JobRecord, type JobStatus } from '../../jobs/types.js';
import { ApiError, errorBody, toApiError } from '../api-error.js';
import { checkWorkflowSize, parseJsonBody } from '../body-limits.js';
import { withZod, type ServiceContext } from '../context.js';
import { isUiFormatWorkflow } from '../routes/jobs.js';
import { sendBytes } from '../routes/outputs.js';
import { CompatRegistry, type MetaStore } from './registry.js';
import { queryNumber, ViewQuerySchema } from '../schemas.js';
import { historyEntry, queueItem } from './shapes.js';
import { ComfySocketHub } from './socket-hub.js';
import { getFromUpstream } from './upstream.js';
import { parseUpload } from './upload-form.js';
import { UploadStore } from './uploads.js';
import { AIOHTTP_500_TEXT, checkPrompt, ObjectInfoCache } from './prompt-check.js';

const TAG = ['comfyui-compatible'];
const ACTIVE: JobStatus[] = ['queued', 'running', 'recovering'];
const TERMINAL: JobStatus[] = ['completed', 'failed', 'timed_out', 'cancelled'];

/** A ComfyUI-shaped rejection, `{ error: { type, message, details, extra_info }, node_errors }`. */
class ComfyRejection extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
    readonly details = '',
    readonly code = 'VALIDATION_ERROR',
  ) {
    super(message);
    this.name = 'ComfyRejection';
  }
}

/** ComfyUI's error shape, with the service's stable `code` inside `error` too (the one shape every answer has). */
function rejectionBody(type: string, message: string, details: string, code: string): Record<string, unknown> {
  return { error: { code, type, message, details, extra_info: {} }, node_errors: {}, code };
}

/** A WebSocket handshake `ws` would refuse with a bare text answer; refused here in the service's shape instead. */
function checkHandshake(req: FastifyRequest): void {
  if (typeof req.headers.upgrade !== 'string') {
    throw new ApiError(400, 'VALIDATION_ERROR', 'this is a WebSocket endpoint: connect with a WebSocket client (Upgrade: websocket)');
  }
  const key = req.headers['sec-websocket-key'];
  const version = req.headers['sec-websocket-version'];
  if (req.headers.upgrade.toLowerCase() !== 'websocket' || typeof key !== 'string' || !/^[+/0-9A-Za-z]{22}==$/.test(key) || (version !== '13' && version !== '8')) {
    throw new ApiError(400, 'VALIDATION_ERROR', 'not a valid WebSocket handshake (Upgrade, Sec-WebSocket-Key and Sec-WebSocket-Version 13 are needed)');
  }
}

// Querystrings are loose: @stable-canvas/comfyui-client appends ?clientId= to every URL.
const ClientQuery = z.looseObject({ clientId: z.string().optional() });

const PromptBody = z.looseObject({
  prompt: z.unknown().optional().describe('The API-format workflow'),
  client_id: z.string().max(200).optional(),
  prompt_id: z.union([z.string().min(1).max(200), z.number()]).optional(),
  extra_data: z.record(z.string(), z.unknown()).optional(),
  number: z.number().optional(),
  front: z.boolean().optional(),
  partial_execution_targets: z.array(z.string()).optional(),
});

// ComfyUI accepts an empty or null body on queue, interrupt and free (it then does nothing or interrupts all).
const QueueBody = z.looseObject({ delete: z.array(z.union([z.string(), z.number()])).optional(), clear: z.boolean().optional() }).nullish();
const InterruptBody = z.looseObject({ prompt_id: z.string().optional() }).nullish();
const HistoryQuery = z.looseObject({ max_items: queryNumber({ int: true, min: 1, max: 1000 }).optional(), offset: queryNumber({ int: true, min: 0, max: 1_000_000 }).optional() });
const anyJson = z.unknown();

/** The compat endpoint's pieces, for `close()`. */
export interface ComfyCompat {
  hub: ComfySocketHub;
  registry: CompatRegistry;
  uploads: UploadStore;
  objectInfo: ObjectInfoCache;
}

/** Registers the `/comfy` plugin; returns the socket hub so the service can close it. */
export function registerComfyCompat(app: FastifyInstance, ctx: ServiceContext, opts: { uploads?: UploadStore; meta?: MetaStore } = {}): ComfyCompat {
  const registry = new CompatRegistry({ ...(opts.meta ? { meta: opts.meta } : {}), onWriteError: (err) => app.log.error({ err }, 'could not persist a ComfyUI prompt id') });
  const hub = new ComfySocketHub({ guard: ctx.guard, registry, clock: ctx.clock, heartbeatMs: ctx.comfyHeartbeatMs, logger: app.log });
  const compat: ComfyCompat = { hub, registry, uploads: opts.uploads ?? new UploadStore(), objectInfo: new ObjectInfoCache({ guard: ctx.guard, clock: ctx.clock }) };
  app.register(
    async (instance) => {
      await instance.register(websocket, { options: { maxPayload: 1024 * 1024 } });
      // Uploads are multipart; the body is parsed by the route (Node's own FormData parser).
      instance.addContentTypeParser('multipart/form-data', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
      // ComfyUI clients post JSON as text/plain (@saintno/comfyui-sdk); only here, behind the Origin check.
      instance.addContentTypeParser('text/plain', { parseAs: 'string' }, (_req, body, done) => {
        try {
          done(null, parseJsonBody(String(body), ctx.limits.maxBodyDepth));
        } catch (err) {
          done(err as Error, undefined);
        }
      });
      instance.setErrorHandler((err: FastifyError | ComfyRejection, req: FastifyRequest, reply: FastifyReply) => {
        if (err instanceof ComfyRejection) return reply.code(err.status).send(rejectionBody(err.type, err.message, err.details, err.code));
        const e = toApiError(err);
        if (e.status >= 500) req.log.error({ err, reqId: req.id, code: e.code }, 'comfy endpoint failed');
        const body = errorBody(e, req.id);
        return reply.code(e.status).send(rejectionBody(e.code.toLowerCase(), body.error.message, e.field ?? '', e.code));
      });
      routes(withZod(instance), ctx, compat);
      hub.start();
    },
    { prefix: '/comfy' },
  );
  return compat;
}

function routes(app: ReturnType<typeof withZod>, ctx: ServiceContext, compat: ComfyCompat): void {
  const { guard } = ctx;
  const { registry, hub, uploads } = compat;

  const queueRemaining = async (): Promise<number> => {
    const { byStatus } = await guard.stats();
    return ACTIVE.reduce((n, s) => n + (byStatus[s] ?? 0), 0);
  };

  const activeJobs = async (): Promise<JobRecord[]> => (await guard.list({ status: ACTIVE, limit: 1000 })).jobs;

  const cancelMany = async (ids: string[]): Promise<void> => {
    await Promise.allSettled(ids.map((id) => guard.cancel(id)));
  };

  app.post(
    '/prompt',
    {
      schema: {
        summary: 'Queue a workflow (ComfyUI POST /prompt)',
        description: 'Creates a guard job. Accepts JSON with any Content-Type (text/plain included). Answers { prompt_id, number, node_errors }.',
        tags: TAG,
        querystring: ClientQuery,
        body: PromptBody,
        response: { 200: z.object({ prompt_id: z.string(), number: z.number(), node_errors: z.record(z.string(), z.unknown()) }), 400: anyJson, 409: anyJson, 413: anyJson, 500: anyJson },
      },
    },
    async (req, reply) => {
      const body = req.body;
      if (body.prompt === undefined || body.prompt === null) throw new ComfyRejection(400, 'no_prompt', 'No prompt provided', 'No prompt provided');
      if (isUiFormatWorkflow(body.prompt)) {
        throw new ComfyRejection(400, 'invalid_prompt', 'This is a UI-format workflow; export it with "Save (API Format)".', 'UI-format workflow');
      }
      // Bounded before the node-definition check, whose cost grows with the nodes.
      if (typeof body.prompt === 'object' && body.prompt !== null) checkWorkflowSize(body.prompt, ctx.limits.maxWorkflowNodes, 'prompt');
      // Checked as ComfyUI checks it, against each server's node definitions, before a job exists.
      const check = checkPrompt(body.prompt, body.partial_execution_targets ?? null, await compat.objectInfo.all(), (name) => uploads.has(name));
      if (!check.ok) {
        if (check.status === 500) return reply.code(500).header('content-type', 'text/plain; charset=utf-8').send(check.text);
        return reply.code(400).send(check.body);
      }
      if (typeof check.prompt !== 'object' || check.prompt === null || Array.isArray(check.prompt)) {
        throw new ComfyRejection(400, 'invalid_prompt', 'The prompt must be an API-format workflow object.');
      }
      const clientId = body.client_id ?? req.query.clientId ?? null;
      const promptId = body.prompt_id !== undefined ? String(body.prompt_id) : undefined;
      // A prompt_id names one job for good: reusing another client's would hand over its history and interrupt.
      if (promptId !== undefined && (registry.isTaken(promptId) || (await guard.get(promptId).catch(() => null)) !== null)) {
        throw new ComfyRejection(409, 'prompt_id_taken', 'That prompt_id is already in use; choose another or let the server choose.', 'prompt_id', 'PROMPT_ID_TAKEN');
      }
      let result;
      try {
        result = await guard.submit(check.prompt as ApiWorkflow, body.front ? { priority: 1000 } : {});
      } catch (err) {
        const e = toApiError(err);
        if (e.status === 400) throw new ComfyRejection(400, 'invalid_prompt', e.message, e.field ?? '');
        throw err;
      }
      const entry = await registry.add(result.id, {
        clientId,
        ...(promptId !== undefined && !registry.isTaken(promptId) ? { promptId } : {}),
        ...(body.number !== undefined ? { number: body.number } : {}),
        ...(body.front ? { front: true } : {}),
      });
      void hub.claim(result.id).catch((err: unknown) => req.log.warn({ err }, 'compat catch-up failed'));
      return { prompt_id: entry.promptId, number: entry.number, node_errors: {} };
    },
  );

  app.get(
    '/prompt',
    {
      schema: { summary: 'Queue size (ComfyUI GET /prompt)', tags: TAG, querystring: ClientQuery, response: { 200: z.object({ exec_info: z.object({ queue_remaining: z.number() }) }) } },
    },
    async () => ({ exec_info: { queue_remaining: await queueRemaining() } }),
  );

  app.get(
    '/queue',
    {
      schema: { summary: 'Running and pending jobs (ComfyUI GET /queue)', tags: TAG, querystring: ClientQuery, response: { 200: z.object({ queue_running: z.array(z.unknown()), queue_pending: z.array(z.unknown()) }) } },
    },
    async () => {
      const jobs = await activeJobs();
      const entries = new Map(await Promise.all(jobs.map(async (j) => [j.id, (await registry.load(j.id)) ?? registry.entry(j.id)] as const)));
      const item = (j: JobRecord) => queueItem(j, entries.get(j.id)!);
      const byNumber = (a: ReturnType<typeof item>, b: ReturnType<typeof item>) => a[0] - b[0];
      return {
        queue_running: jobs.filter((j) => j.status !== 'queued').map(item).sort(byNumber),
        queue_pending: jobs.filter((j) => j.status === 'queued').map(item).sort(byNumber),
      };
    },
  );

  app.post(
    '/queue',
    {
      schema: { summary: 'Cancel pending jobs: { delete: [ids] } or { clear: true } (ComfyUI POST /queue)', tags: TAG, querystring: ClientQuery, body: QueueBody },
    },
    async (req, reply) => {
      const ids: string[] = [];
      if (req.body?.clear) ids.push(...(await guard.list({ status: 'queued', limit: 1000 })).jobs.map((j) => j.id));
      for (const id of req.body?.delete ?? []) {
        const jobId = await registry.resolvePersisted(String(id));
        if (registry.allows(jobId, req.query.clientId)) ids.push(jobId);
      }
      await cancelMany([...new Set(ids)]);
      return reply.code(200).send();
    },
  );

  app.post(
    '/interrupt',
    {
      schema: { summary: 'Interrupt: cancel a running job, or the calling client\'s running jobs (ComfyUI POST /interrupt)', tags: TAG, querystring: ClientQuery, body: InterruptBody },
    },
    async (req, reply) => {
      const promptId = req.body?.prompt_id;
      let ids: string[];
      if (promptId) {
        const jobId = await registry.resolvePersisted(promptId);
        ids = registry.allows(jobId, req.query.clientId) ? [jobId] : [];
      } else {
        const running = (await activeJobs()).filter((j) => j.status !== 'queued');
        const clientId = req.query.clientId;
        ids = running.filter((j) => !clientId || registry.peek(j.id)?.clientId === clientId).map((j) => j.id);
      }
      // ComfyUI answers 200 whatever the id; an unknown id is not an error here either.
      await cancelMany(ids);
      return reply.code(200).send();
    },
  );

  app.get(
    '/history/:id',
    {
      schema: {
        summary: 'History entry of one job; {} while unknown or unfinished (ComfyUI GET /history/{id})',
        tags: TAG,
        params: z.object({ id: z.string().min(1).max(200) }),
        querystring: ClientQuery,
        response: { 200: z.record(z.string(), z.unknown()) },
      },
    },
    async (req) => {
      const jobId = await registry.resolvePersisted(req.params.id);
      if (!registry.allows(jobId, req.query.clientId)) return {};
      const job = await guard.get(jobId);
      if (!job || !isTerminal(job.status)) return {};
      const entry = (await registry.load(job.id)) ?? registry.entry(job.id);
      for (const o of job.outputs) registry.rememberFile(o, o.server);
      return { [entry.promptId]: historyEntry(job, entry, registry.terminalOf(job.id)) };
    },
  );

  app.get(
    '/history',
    {
      schema: { summary: 'History of the newest finished jobs (ComfyUI GET /history?max_items=)', tags: TAG, querystring: HistoryQuery, response: { 200: z.record(z.string(), z.unknown()) } },
    },
    async (req) => {
      const limit = Math.min(1000, (req.query.max_items ?? 200) + (req.query.offset ?? 0));
      const jobs = (await guard.list({ status: TERMINAL, limit })).jobs.slice(req.query.offset ?? 0);
      const out: HistoryMap = {};
      // ComfyUI lists oldest first; the store pages newest first.
      for (const job of jobs.reverse()) {
        const entry = (await registry.load(job.id)) ?? registry.entry(job.id);
        for (const o of job.outputs) registry.rememberFile(o, o.server);
        out[entry.promptId] = historyEntry(job, entry, registry.terminalOf(job.id));
      }
      return out;
    },
  );

  app.post(
    '/history',
    { schema: { summary: 'Accepted and ignored: comfyguard keeps jobs until its own cleanup (ComfyUI POST /history)', tags: TAG, querystring: ClientQuery, body: anyJson } },
    async (_req, reply) => reply.code(200).send(),
  );

  app.post('/free', { schema: { summary: 'Accepted and ignored (ComfyUI POST /free)', tags: TAG, querystring: ClientQuery, body: anyJson } }, async (_req, reply) =>
    reply.code(200).send(),
  );

  app.patch(
    '/internal/logs/subscribe',
    { schema: { summary: 'Accepted and ignored (log streaming is not forwarded)', tags: TAG, querystring: ClientQuery, body: anyJson } },
    async (_req, reply) => reply.code(200).send(),
  );

  for (const kind of ['image', 'mask'] as const) {
    app.post(
      `/upload/${kind}`,
      {
        schema: {
          summary: `Upload an ${kind === 'image' ? 'image' : 'image mask'} (ComfyUI POST /upload/${kind}); kept by comfyguard and delivered to the server that runs the job`,
          description: 'multipart/form-data with `image`, and optionally `type`, `subfolder`, `overwrite`' + (kind === 'mask' ? ' and `original_ref` (JSON)' : '') + '. Answers { name, subfolder, type }.',
          tags: TAG,
          querystring: ClientQuery,
        },
      },
      async (req, reply) => {
        const r = await parseUpload(req.headers['content-type'], req.body, kind === 'mask');
        if (!r.ok) {
          if (r.status === 500) return reply.code(500).header('content-type', 'text/plain; charset=utf-8').send(AIOHTTP_500_TEXT);
          return reply.code(r.status).send();
        }
        return uploads.save(r.file, r.overwrite);
      },
    );
  }

  app.get(
    '/view',
    { schema: { summary: 'An output file (ComfyUI GET /view), from the server that made it', tags: TAG, querystring: ViewQuerySchema } },
    async (req, reply) => {
      const file = { filename: req.query.filename, subfolder: req.query.subfolder ?? '', type: req.query.type ?? 'output' };
      const uploaded = uploads.get(file.type, file.subfolder, file.filename);
      if (uploaded) return sendBytes(reply, uploaded.contentType, uploaded.data, file.filename);
      const known = registry.serverOf(file);
      const candidates = known ? [known] : (await guard.servers()).map((s) => s.name);
      let lastError: unknown = new ApiError(404, 'NOT_FOUND', 'no such file');
      for (const server of candidates) {
        try {
          const out = await guard.fetchOutput(server, file);
          return sendBytes(reply, out.contentType, out.data, file.filename);
        } catch (err) {
          lastError = err;
        }
      }
      throw lastError;
    },
  );

  const passThrough = (path: string) => async (req: FastifyRequest, reply: FastifyReply) => {
    const suffix = (req.params as { name?: string } | undefined)?.name;
    const full = suffix === undefined ? path : `${path}/${encodeURIComponent(suffix)}`;
    const ac = new AbortController();
    const onClose = () => ac.abort();
    req.raw.on('close', onClose);
    try {
      const res = await getFromUpstream(guard, full, { timeoutMs: 15_000, signal: ac.signal });
      return reply.code(res.status).header('content-type', res.contentType).header('x-comfyguard-server', res.server).send(res.body);
    } finally {
      req.raw.off('close', onClose);
    }
  };
  for (const [path, summary] of [
    ['/object_info', 'Node definitions of a healthy server (ComfyUI GET /object_info)'],
    ['/system_stats', 'System stats of a healthy server (ComfyUI GET /system_stats)'],
    ['/embeddings', 'Embeddings of a healthy server'],
    ['/extensions', 'Extensions of a healthy server'],
    ['/features', 'Feature flags of a healthy server'],
    ['/models', 'Model folders of a healthy server'],
  ] as const) {
    app.get(path, { schema: { summary, tags: TAG, querystring: ClientQuery } }, passThrough(path));
  }
  app.get('/object_info/:name', { schema: { summary: 'One node definition of a healthy server', tags: TAG, params: z.object({ name: z.string() }), querystring: ClientQuery } }, passThrough('/object_info'));
  app.get('/models/:name', { schema: { summary: 'Models in one folder of a healthy server', tags: TAG, params: z.object({ name: z.string() }), querystring: ClientQuery } }, passThrough('/models'));

  app.get(
    '/ws',
    {
      websocket: true,
      schema: {
        summary: 'WebSocket with ComfyUI events for the jobs submitted with this clientId',
        description:
          'First message: status with sid. Per job: execution_start, execution_cached, executing, progress, executed, execution_success | execution_error | execution_interrupted, status, executing {node:null}. A status heartbeat every few seconds.',
        tags: TAG,
        querystring: ClientQuery,
      },
      preValidation: async (req) => checkHandshake(req),
    },
    (socket, req) => {
      const clientId = (req.query as { clientId?: string }).clientId || randomUUID().replace(/-/g, '');
      const ac = new AbortController();
      ctx.streams.add(ac);
      ac.signal.addEventListener('abort', () => socket.close(1001, 'comfyguard is shutting down'), { once: true });
      socket.on('close', () => ctx.streams.delete(ac));
      hub.attach(clientId, socket);
    },
  );
}
