/**
 * comfyguard's public API. Named exports only: everything a library user, the HTTP service and
 * the CLI may use is listed here.
 */
export type * from './comfy/types.js';
export type { ComfyApi, ComfyClientOptions, CallOptions, SubmitOptions, ComfySocketEvent, RouteRequest, RouteResponse } from './comfy/api.js';
export { ComfyRequestError, parsePromptValidation } from './comfy/errors.js';
export type { ComfyRequestErrorKind, PromptValidation } from './comfy/errors.js';
export { ComfyClient, ComfySocket, ComfyEventStream, decodeBinaryFrame, parseWsText, outcomeFromHistory, isTerminalWsMessage } from './comfy/index.js';
export { serverCapabilities, WorkflowFormatError, assertApiWorkflow, isApiWorkflow, classTypes, referencedModels, outputNodeIds } from './comfy/index.js';
export type { ComfyClientInit, ComfySocketOptions, ComfyEventStreamOptions, ComfyStreamEvent, ServerCapabilities, ModelReference } from './comfy/index.js';
export type { Clock } from './util/clock.js';
export { systemClock } from './util/clock.js';
export type * from './jobs/types.js';
export type * from './store/contract.js';
export { openStore, DEFAULT_STORE_URL, StoreError, isStoreError, MemoryStore, SqliteStore, PostgresStore, RedisStore } from './store/index.js';
export type { OpenStoreOptions, StoreErrorCode, SqliteStoreOptions, PostgresStoreOptions, RedisStoreOptions } from './store/index.js';
export { DEFAULT_POLICY, compilePolicy, RecoveryPolicyError, applyParams, PatchError, isPatchError, PARAM_NAMES } from './recovery/index.js';
export type { RecoveryPolicy, PolicyIssue, PatchErrorCode } from './recovery/index.js';
export { createMetrics, createJsonLinesSink, createLoggerSink, createErrorSpikeAlert, createWebhookNotifier, attachWebhooks, signWebhookBody, SIGNATURE_HEADER, EVENT_HEADER } from './telemetry/index.js';
export { GoodputAccumulator, goodputOf, goodputOfJob } from './telemetry/index.js';
export type { GoodputEntry, GoodputOptions, GoodputReport, GoodputTotals } from './telemetry/index.js';
export type { GuardMetrics, MetricsOptions, ClosableSink, ErrorSpike, ErrorSpikeAlert, ErrorSpikeAlertOptions, WebhookNotifier, WebhookNotifierOptions, WebhookResult, JobWebhookPayload } from './telemetry/index.js';
export { BullMqDispatcher, DispatcherUnavailableError } from './queue/bullmq.js';
export type { BullMqDispatcherOptions } from './queue/bullmq.js';
export { createGuard, GuardError } from './jobs/guard.js';
export type { GuardErrorCode } from './jobs/guard.js';
export type { Guard, GuardStats, JobEvent, AnalyticsEvent, AnalyticsSink, SubmitResult, ServerHealthView, DegradationLevel, LearnedMemory, LearnedMemoryEntry } from './jobs/guard-api.js';
export { readLearnedMemory, learnedMemoryFrom, MEMORY_MODEL_META_KEY } from './jobs/learned-memory.js';
export { GuardConfigError } from './jobs/options.js';
export type { GuardOptions, ServerOption, Logger } from './jobs/options.js';
export { InProcessDispatcher } from './queue/in-process.js';
export type { Dispatcher, JobHandler } from './queue/contract.js';
export { ServerPool, PoolOutputDeleter, parseOutputDeleteRoute } from './pool/index.js';
export type { OutputDeleter, OutputDeleteRoute, OutputFile, OutputFileResult, PoolOutputDeleterOptions } from './pool/index.js';
export type { CleanupReport, OutputCleanupReport, CleanupFileResult } from './jobs/cleanup.js';
export { createErrorAnalytics } from './jobs/error-analytics.js';
export type { ErrorAnalytics, ErrorAnalyticsOptions, ErrorAnalyticsSnapshot } from './jobs/error-analytics.js';
export { compileRetryPolicy, ServerBreaker, HealthChecker, DEFAULT_TIMEOUTS } from './resilience/index.js';
export type { RetryOptions, RetryPolicy, BreakerOptions, BreakerState, HealthResult } from './resilience/index.js';
export { classify, toComfyGuardError, ComfyGuardError, isComfyGuardError, compileRules, ClassifierRules, ClassifierRulesError, DEFAULT_RULES, ERROR_CODES, ERROR_CATEGORIES, ERROR_REGISTRY, isErrorCode } from './errors/index.js';
export type { Classification, ClassifiedNodeError, ClassifyOptions, Evidence, EvidenceKind, ErrorCode, ErrorCategory, ErrorCodeInfo, RuleSpec, RuleWhen, RulesConfig, ComfyGuardErrorJSON } from './errors/index.js';
