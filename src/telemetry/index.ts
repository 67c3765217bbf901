/** Telemetry: Prometheus metrics, analytics sinks and alerts, webhooks. */
export { GoodputAccumulator, goodputOf, goodputOfJob, type GoodputEntry, type GoodputOptions, type GoodputReport, type GoodputTotals } from './goodput.js';
export { createMetrics, DEGRADATION_LEVELS, type GuardMetrics, type MetricsOptions, type MetricsSource } from './metrics.js';
export {
  createErrorSpikeAlert,
  createJsonLinesSink,
  createLoggerSink,
  ERROR_EVENT_NAMES,
  type ClosableSink,
  type ErrorSpike,
  type ErrorSpikeAlert,
  type ErrorSpikeAlertOptions,
} from './analytics.js';
export {
  attachWebhooks,
  createWebhookNotifier,
  EVENT_HEADER,
  isRetryableStatus,
  jobWebhookPayload,
  SIGNATURE_HEADER,
  signWebhookBody,
  type FetchLike,
  type JobWebhookPayload,
  type WebhookNotifier,
  type WebhookNotifierOptions,
  type WebhookResult,
  type WebhookRetryOptions,
} from './webhook.js';
export { categoryOf, isCriticalCode, SEED_RECOVERY_TARGETS, SEVERITIES, type Severity } from '../errors/severity.js';
export type { ErrorAnalytics, ErrorAnalyticsOptions, ErrorAnalyticsSnapshot } from '../jobs/error-analytics.js';
export {
  ALERT_KINDS,
  alertLine,
  createAlertManager,
  createSlackAlertSink,
  createWebhookAlertSink,
  guardedAlertPost,
  plainAlertPost,
  slackPayload,
  type Alert,
  type AlertKind,
  type AlertManager,
  type AlertManagerOptions,
  type AlertPost,
  type AlertSink,
} from './alerts.js';
export { dashboardSeries, grafanaDashboard } from './grafana.js';
