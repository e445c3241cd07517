/**
 * confab load generator: SDK clients over one or more gateways, a fixed message
 * rate, and a verdict on every acknowledged message (lost, duplicated, out of
 * order), latency and reconnect times. Public entry; see docs/load.md.
 *
 *   const report = await runLoad({ urls: ['http://127.0.0.1:8080'], clients: 200, rate: 100 });
 */
export { LoadGenerator, runLoad, resolveOptions, type LoadSlot } from './generator.js';
export { LoadError, type LoadErrorCode } from './errors.js';
export { LoadTracker, MemberTrack, RoomLedger, type DeliveredMessage, type RoomSummary } from './tracker.js';
export { encodePayload, decodePayload, newRunId } from './payload.js';
export { formatReport } from './format.js';
export type { LoadOptions, LoadProgress, LoadReport, Percentiles, ReconnectSample, RoomLayout } from './types.js';
