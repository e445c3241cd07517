/**
 * What the web UI holds while signed in: the session, the SDK client, the local store and
 * the room on screen. One object, so the modules that render and act on it share one truth.
 */
import type { ConfabClient } from '../client/index.js';
import type { SavedSession } from './session.js';
import type { Store } from './store.js';

export interface AppState {
  session?: SavedSession;
  client?: ConfabClient;
  store?: Store;
  /** The room on screen. */
  current?: string;
  /** Connection attempts failed in a row (two or more: the session is renewed before the next). */
  failedAttempts: number;
}

export const app: AppState = { failedAttempts: 0 };
