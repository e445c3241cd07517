/** The SDK's reconnect backoff is the shared one (src/shared/backoff.ts); this name stays for the SDK's own imports. */
export { Backoff, DEFAULT_BACKOFF, type BackoffOptions } from '../shared/backoff.js';
