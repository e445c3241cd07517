/**
 * confab conformance kit: checks a running deployment against docs/protocol.md, validating every
 * frame against the protocol schema (docs/protocol.schema.json). See docs/conformance.md.
 *
 *   const report = await runConformance({ url: 'http://127.0.0.1:8080' });
 *   process.stdout.write(formatConformanceReport(report));
 */
export { CHECKS, type Check } from './checks.js';
export { formatConformanceReport, runConformance, selectChecks, SCHEMA_CHECK, type CheckResult, type CheckStatus, type ConformanceOptions, type ConformanceReport } from './run.js';
