/**
 * `GET /api/outputs/:server/:type/:filename?subfolder=`: an output file, fetched through the guard
 * from the ComfyUI server that made it. This is the URL the guard writes into a job's outputs.
 */
import type { FastifyReply } from 'fastify';
import { z } from 'zod';
import type { ServiceContext, ZodApp } from '../context.js';
import { ErrorResponseSchema, OutputParamsSchema, OutputQuerySchema } from '../schemas.js';

/** Raster images, video and audio: the only types a browser may show inline (SVG can carry script). */
const INLINE_TYPE = /^(?:image\/(?:png|jpeg|gif|webp|avif|bmp|x-icon|vnd\.microsoft\.icon)|video\/[a-z0-9.+-]+|audio\/[a-z0-9.+-]+)$/;

/**
 * Output files come from a ComfyUI server and may be anything (an SVG or HTML "image" with script):
 * they run in a sandbox with nothing allowed, and only image, video and audio types are shown inline.
 */
export const OUTPUT_CSP = "default-src 'none'; img-src 'self' data:; media-src 'self'; style-src 'unsafe-inline'; sandbox";

/** `inline` or `attachment` with the file name, ASCII-safe plus RFC 5987 UTF-8. */
export function contentDisposition(contentType: string, filename: string): string {
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  const kind = INLINE_TYPE.test(type) ? 'inline' : 'attachment';
  const base = filename.split(/[\\/]/).pop() ?? '';
  const ascii = base.replace(/[^\x20-\x7e]|["\\%;]/g, '_').slice(0, 200) || 'output';
  return `${kind}; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(base.slice(0, 200))}`;
}

/** Sends an output file (Buffers bypass the JSON serializer) with its disposition and the sandboxing CSP. */
export function sendBytes(reply: FastifyReply, contentType: string, data: Uint8Array, filename: string): FastifyReply {
  const type = contentType || 'application/octet-stream';
  return reply
    .code(200)
    .header('content-type', type)
    .header('content-disposition', contentDisposition(type, filename))
    .header('content-security-policy', OUTPUT_CSP)
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
          200: { description: 'The file, with the content type the server sent; only image, video and audio types are inline, anything else (SVG included) is an attachment', content: { 'application/octet-stream': { schema: z.string() } } },
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
      return sendBytes(reply, file.contentType, file.data, filename);
    },
  );
}
