/**
 * Processes confab supervises, for `confab cluster`, the chaos harness, the
 * bench and the tests alike: one process supervisor (`ManagedProcess`,
 * `spawnLogged`), PID helpers for processes known only by PID, bounded waits,
 * ports from the kernel, and launchers for nats-server, redis-server, HAProxy
 * and gateway processes. Product code: it imports nothing from the test kit,
 * the bench or the chaos harness.
 */
export { bindFailed, ManagedProcess, ProcessExitedError, spawnLogged, type ManagedProcessOptions, type Proc, type ReadyProbe } from './process.js';
export { alive, cmdline, MARKERS, signalIfOurs, tail, waitGone } from './pid.js';
export { httpStatus, nextEvent, portAccepts, waitFor, waitHttp, waitPort, WaitTimeoutError, type WaitOptions } from './wait.js';
export { freePort, PortTakenError, readNatsPorts, withPortRetry, type NatsPorts } from './ports.js';
export { NATS_SERVER_BIN, runNatsOnConfig, startNats, startNatsCluster, waitHealthy, type NatsCluster, type NatsOnConfig, type NatsServer, type StartNatsOptions } from './nats.js';
export { REDIS_SERVER_BIN, redisCommand, startRedis, type RedisServer, type StartRedisOptions } from './redis.js';
export {
  checkHaproxyConfig,
  HAPROXY_BIN,
  HaproxyAdmin,
  HaproxyError,
  renderHaproxyConfig,
  startHaproxy,
  type AdminState,
  type HaproxyBackend,
  type HaproxyConfigOptions,
  type HaproxyProcess,
  type ServerStatus,
  type StartHaproxyOptions,
} from './haproxy.js';
export {
  gatewayCommand,
  GatewayExitedError,
  GATEWAY_ENV_SCRUB,
  listeningUrl,
  LOCAL_GATEWAY_DEFAULTS,
  runGateway,
  spawnGatewayProc,
  startGatewayProc,
  waitGatewayReady,
  type GatewayProcess,
  type GatewaySpawn,
} from './gateway.js';
