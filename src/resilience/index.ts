/**
 * Resilience policies as values, built on cockatiel 3: retry/backoff, per-server circuit breakers,
 * timeouts and cached health checks. Everything time-based reads an injected Clock.
 */
export { compileRetryPolicy, requestRetry, DEFAULT_RETRY_OPTIONS } from './retry.js';
export type { RetryOptions, RetryPolicy, RetryClassification } from './retry.js';
export { parseRetryAfter, retryAfterFrom } from './retry-after.js';
export { ServerBreaker, resolveBreakerOptions, DEFAULT_BREAKER_OPTIONS } from './breaker.js';
export type { BreakerOptions, BreakerState, BreakerStateChange, ServerBreakerOptions } from './breaker.js';
export { HealthChecker, DEFAULT_HEALTH_TTL_MS } from './health.js';
export type { HealthResult, HealthCheckerOptions } from './health.js';
export { DEFAULT_TIMEOUTS, resolveTimeouts, withTimeout } from './timeouts.js';
export type { TimeoutOptions, ResolvedTimeouts } from './timeouts.js';
export { PolicyConfigError } from './config-error.js';
