/**
 * Classifying nats.js errors by the library's own classes and JetStream API codes
 * (never by a name string or a message regex): which failures are worth retrying
 * with the same message id within a bounded time, and which are final.
 */
import { RequestError, TimeoutError } from '@nats-io/transport-node';
import { JetStreamApiError } from '@nats-io/jetstream';
import { jserrors } from '@nats-io/jetstream/internal';

/**
 * JetStream API codes (nats-server `jetstream_errors_generated.go`) that mean "the cluster is
 * electing or catching up, ask again shortly".
 */
export const TRANSIENT_API_CODES: ReadonlySet<number> = new Set([
  10004, // JSClusterIncompleteErr: incomplete results
  10008, // JSClusterNotAvailErr: JetStream system temporarily unavailable
  10009, // JSClusterNotLeaderErr: JetStream cluster can not handle request
  10118, // JSStreamOfflineErr (2.10+): stream is offline
]);

/**
 * True for failures that a retry of the same request can cure: a request timeout, nobody
 * answering (a stream without a leader: nats.js reports `JetStreamNotEnabled` for a JetStream
 * publish that met no responders), or a transient JetStream API code.
 */
export function isTransientNatsError(e: unknown): boolean {
  if (e instanceof TimeoutError) return true;
  if (e instanceof RequestError) return e.isNoResponders() || e.cause instanceof TimeoutError;
  if (e instanceof jserrors.JetStreamNotEnabled) return true;
  if (e instanceof JetStreamApiError) return TRANSIENT_API_CODES.has(e.code);
  return false;
}
