/**
 * The OpenAPI document (`/api/openapi.json`) and the interactive docs (`/docs`), generated from the
 * same zod schemas that validate requests.
 */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { createJsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod';

const DOCS_ROUTES = ['/docs', '/docs/', '/docs/json', '/docs/yaml', '/docs/uiConfig', '/docs/initOAuth', '/docs/static/*', '/docs/*', '/api/openapi.json'];

const zodTransform = createJsonSchemaTransform({ skipList: DOCS_ROUTES });

/** Registers @fastify/swagger; must run before any route is added so every route is seen. */
export async function registerOpenApi(app: FastifyInstance, version: string): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'comfyguard',
        description:
          'A reliability layer for ComfyUI: jobs, live progress, health, statistics, metrics and a ComfyUI-compatible endpoint. ' +
          'Errors always have the shape { "error": { "code", "message", "field"?, "details"? } }.',
        version,
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'Needed when the service is started with an API key' } } },
      security: [{ bearer: [] }],
      tags: [
        { name: 'jobs', description: 'Submit, follow, retry and cancel jobs' },
        { name: 'stats', description: 'Errors, recoveries and rates' },
        { name: 'health', description: 'comfyguard and its ComfyUI servers' },
        { name: 'outputs', description: 'Output files' },
        { name: 'metrics', description: 'Prometheus' },
        { name: 'comfyui-compatible', description: 'Give http://host:port/comfy to an existing ComfyUI client' },
      ],
    },
    transform: (doc) => {
      // @fastify/websocket hides its routes from the docs; the ComfyUI-compatible /comfy/ws is part of the API.
      const isSocket = (doc as { route?: { websocket?: boolean } }).route?.websocket === true;
      return zodTransform(isSocket ? { ...doc, schema: { ...doc.schema, hide: false } } : doc);
    },
    transformObject: jsonSchemaTransformObject,
  });
}

/** Registers `/docs` (Swagger UI) and `/api/openapi.json`. */
export async function registerDocsUi(app: FastifyInstance): Promise<void> {
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { docExpansion: 'list', deepLinking: true } });
  app.get('/api/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
