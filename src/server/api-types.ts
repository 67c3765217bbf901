/**
 * The HTTP API's response shapes as TypeScript types, for clients written against them: the
 * dashboard (`src/web`, checked with `tsconfig.web.json`) imports these in JSDoc, so a change to a
 * schema that breaks the page fails the type check. Types only: nothing here runs.
 */
import type { z } from 'zod';
import type { BulkRetryResponseSchema, ConsoleServersSchema, ControlSchema, JobSummarySchema, SearchJobsResponseSchema } from './console-schemas.js';
import type { CleanupResponseSchema, DetailedStatsSchema, EmergencyStopResponseSchema, ErrorResponseSchema, JobViewSchema, StatsSchema, SubmitJobResponseSchema } from './schemas.js';

export type { StreamPayload } from './routes/events.js';
export type Job = z.infer<typeof JobViewSchema>;
export type JobSummary = z.infer<typeof JobSummarySchema>;
export type SearchResult = z.infer<typeof SearchJobsResponseSchema>;
export type ListedJob = SearchResult['jobs'][number];
export type Stats = z.infer<typeof StatsSchema>;
export type DetailedStats = z.infer<typeof DetailedStatsSchema>;
export type ConsoleServers = z.infer<typeof ConsoleServersSchema>;
export type ConsoleServer = ConsoleServers['servers'][number];
export type Control = z.infer<typeof ControlSchema>;
export type BulkRetry = z.infer<typeof BulkRetryResponseSchema>;
export type Cleanup = z.infer<typeof CleanupResponseSchema>;
export type EmergencyStop = z.infer<typeof EmergencyStopResponseSchema>;
export type SubmitResponse = z.infer<typeof SubmitJobResponseSchema>;
export type ErrorBody = z.infer<typeof ErrorResponseSchema>;
