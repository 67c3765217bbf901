/**
 * The ComfyUI protocol layer's public pieces: the REST client, the WebSocket socket and
 * reconnecting stream, frame decoding, schemas, outcome reading, feature gating and graph helpers.
 */
export type * from './types.js';
export type { CallOptions, ComfyApi, ComfyClientOptions, ComfySocketEvent, RouteRequest, RouteResponse, SubmitOptions } from './api.js';
export { ComfyRequestError, parsePromptValidation } from './errors.js';
export type { ComfyRequestErrorInit, ComfyRequestErrorKind, PromptValidation } from './errors.js';
export { ComfyClient } from './client.js';
export type { ComfyClientInit } from './client.js';
export { ComfySocket } from './socket.js';
export type { ComfySocketOptions, SocketClosed } from './socket.js';
export { ComfyEventStream, reconnectDelay } from './event-stream.js';
export type { ComfyEventStreamOptions, ComfyStreamEvent, ReconnectBackoff } from './event-stream.js';
export { BinaryEventType, decodeBinaryFrame, encodeBinaryFrame, previewMimeType } from './binary.js';
export { isKnownWsMessage, parseWsMessage, parseWsText } from './messages.js';
export { isTerminalWsMessage, outcomeFromHistory } from './outcome.js';
export { FEATURE_VERSIONS, compareVersions, parseVersion, serverCapabilities, versionAtLeast } from './features.js';
export type { ServerCapabilities, VersionTriple } from './features.js';
export {
  KNOWN_OUTPUT_CLASS_TYPES,
  WorkflowFormatError,
  assertApiWorkflow,
  classTypes,
  isApiWorkflow,
  isLink,
  linksOf,
  nodeById,
  outputNodeIds,
  referencedModels,
  topologicalOrder,
  upstreamOf,
} from './workflow.js';
export type { ModelReference, WorkflowLink, WorkflowProblem } from './workflow.js';
export {
  apiWorkflowSchema,
  historyEntrySchema,
  historyMapSchema,
  objectInfoSchema,
  promptResponseSchema,
  queueStateSchema,
  systemStatsSchema,
  wsDataSchemas,
} from './schemas.js';
export type { ServerFeatures } from './schemas.js';
export { transportCodeOf } from './transport.js';
export { EventHub } from './event-hub.js';
export type { Listener } from './event-hub.js';
