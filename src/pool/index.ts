/**
 * The server pool: health, breakers, capabilities, routing, failover and the degradation level.
 */
export { ServerPool } from './pool.js';
export type { PoolOptions, PoolEvent, ServerStateView, SelectRequest, Selection, ServerFeature } from './pool.js';
export { resolveServers } from './config.js';
export type { ServerConfig, ResolvedServerConfig } from './config.js';
export { workflowNeeds, missingFrom, hasModel, makeCapabilities, discoverCapabilities, normaliseModelName, CapabilityDiscoveryError } from './capabilities.js';
export type { Capabilities, WorkflowNeeds, Missing } from './capabilities.js';
export { chooseRoute, loadOf } from './routing.js';
export type { RouteCandidate, RouteDecision } from './routing.js';
export { DEGRADATION_LEVELS, DEGRADATION_FACTORS, degradationScore, levelForScore, nextLevel, ErrorRateWindow } from './degradation.js';
export type { Degradation, DegradationLevel, DegradationInput } from './degradation.js';
export { PoolOutputDeleter, parseOutputDeleteRoute } from './output-deleter.js';
export type { OutputDeleter, OutputDeleteRoute, OutputFile, OutputFileResult, ParsedDeleteRoute, PoolOutputDeleterOptions } from './output-deleter.js';
