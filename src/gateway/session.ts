/**
 * Sessions: moved to src/auth (tokens.ts: confab's own tokens and app JWTs; secrets.ts: the
 * secret on disk). Re-exported here for existing importers.
 */
export { SessionSigner, newUserId, type Session } from '../auth/tokens.js';
export { loadOrCreateSecret } from '../auth/secrets.js';
