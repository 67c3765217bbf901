/**
 * `GET /api/outputs/:server/:type/:filename?subfolder=`: an output file, fetched through the guard
 * from the ComfyUI server that made it. This is the URL the guard writes into a job's outputs.
 */
import type { FastifyReply } from 'fastify';
import { z } from 'zod';
import type { ServiceContext, ZodApp } from '../context.js';
import { ErrorResponseSchema, OutputParamsSchema, OutputQuerySchema } from '../schemas.js';

/** Sends a file as the server sent it (Buffers bypass the JSON serializer). */
export function sendBytes(reply: FastifyReply, contentType: string, data: Uint8Array): FastifyReply {
  return reply
    .code(200)
    .header('content-type', contentType || 'application/octet-stream')
    .header('cache-control', 'private, max-age=3600')
    .header('x-content-type-options', 'nosniff')
    .send(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
}

/** Registers the output proxy route. */
export function registerOutputRoutes(app: ZodApp, ctx: ServiceContext): void {
  app.get(
    '/api/outputs/:server/:type/:filename',
    {
      schema: {
        summary: 'Download an output file through the server that made it',
        tags: ['outputs'],
        params: OutputParamsSchema,
        querystring: OutputQuerySchema,
        response: {
          200: { description: 'The file, with the content type the server sent', content: { 'application/octet-stream': { schema: z.string() } } },
          401: ErrorResponseSchema,
          404: ErrorResponseSchema,
          502: ErrorResponseSchema,
          504: ErrorResponseSchema,
        },
      },
    },
    async (req, reply) => {
      const { server, type, filename } = req.params;
      const file = await ctx.guard.fetchOutput(server, { filename, type, ...(req.query.subfolder ? { subfolder: req.query.subfolder } : {}) });
      return sendBytes(reply, file.contentType, file.data);
    },
  );
}
