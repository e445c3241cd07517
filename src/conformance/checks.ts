/**
 * The conformance checks: each one verifies a documented behaviour of docs/protocol.md (or of
 * the README's HTTP endpoint table) against a running deployment, using only what the docs
 * describe. Every check can fail; a check that cannot run against this deployment (a limit too
 * large to probe politely, no peer URL, alerts not allowed) is skipped with the reason.
 *
 * Checks stay inside the announced limits (`welcome.limits`): sockets are paced below the rate,
 * and the one check that exceeds it (rate.burst) stops well short of `floodCloseAfter`.
 */
import { CLUSTER_CHECKS } from './checks/cluster.js';
import type { Check } from './checks/common.js';
import { ERROR_CHECKS } from './checks/errors.js';
import { HTTP_CHECKS } from './checks/http.js';
import { ROOM_CHECKS } from './checks/rooms.js';

export type { Check } from './checks/common.js';

/** Every check, in the order they run: HTTP and the upgrade, rooms and resume, errors and limits, across gateways. */
export const CHECKS: Check[] = [...HTTP_CHECKS, ...ROOM_CHECKS, ...ERROR_CHECKS, ...CLUSTER_CHECKS];
