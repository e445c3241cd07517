/** Moved to the product module src/procs (shared with `confab cluster`); re-exported here for existing importers. */
export * from '../procs/process.js';
