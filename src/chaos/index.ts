/**
 * Chaos suite: confab under faults, checked from outside by an independent
 * ledger of SDK clients. Test and tooling code only: product code never imports
 * this folder. Entry points: test/chaos/chaos.test.ts (CI scale) and
 * `npm run chaos` (src/chaos/main.ts, every scenario, docs/reliability.md).
 */
export { ChaosCluster, STREAM_NAME, type Crash, type HealthReport, type Part, type PartKind, type TopologyOptions } from './cluster.js';
export { Ledger, percentile, type LedgerFigures, type LedgerOptions, type LeaveNotice, type Member, type Reconnect, type SenderInversion } from './ledger.js';
export { SCALES, SCENARIOS, scenario, type ClientUrls, type FaultContext, type Scale, type Scenario } from './scenarios.js';
export { runScenario, verdict, type RunOptions, type ScenarioResult } from './run.js';
export { renderEvidence, renderSection, renderTable, writeSection, type RunInfo } from './report.js';
