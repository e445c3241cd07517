// Dependency rules, checked by `npm run depcheck` (part of `npm test`; test/cli/dependency-rules.test.ts
// also proves each rule fails on a planted violation). The product is everything under src/ except
// the tools: src/testkit (test helpers), src/bench (benchmarks, measurement scripts) and src/chaos
// (the chaos harness). Tools may import the product; the product never imports a tool, test/ or a
// devDependency (socket.io, playwright-core, esbuild, ...), so `npm ci --omit=dev` runs it.
const TOOLS = '^src/(testkit|bench|chaos)/';
const PRODUCT = '^src/(?!(testkit|bench|chaos)/)';
/** What runs in a browser: the SDK (browser and Node), the web client, and src/shared (helpers both the SDK and the server use). */
const BROWSER = '^src/(client|web|shared)/';
/** Transport adapters and the interfaces they implement: below the gateway, never above it. */
const ADAPTERS = '^src/(bus|history|nats|redis|pubsub|postgres)/';
/** Node built-ins as depcruise names them (`fs` for `node:fs`), for the reachability rule (which matches paths only). */
const NODE_BUILTIN = `^(node:)?(${require('node:module').builtinModules.map((m) => m.replace(/[/]/g, '\\/')).join('|')})$`;

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'product-imports-tool',
      severity: 'error',
      comment: 'The product (server, client, web, CLI) must not import the test kit, the bench or the chaos harness: move what both need into the product (e.g. src/procs).',
      from: { path: PRODUCT },
      to: { path: TOOLS },
    },
    {
      name: 'imports-test',
      severity: 'error',
      comment: 'Nothing outside test/ imports from test/: shared helpers belong in src/testkit.',
      from: { pathNot: '^test/' },
      to: { path: '^test/' },
    },
    {
      name: 'product-imports-dev-dependency',
      severity: 'error',
      comment: 'The product runs on production dependencies only (the Docker image installs with --omit=dev); type-only imports vanish at build time.',
      from: { path: PRODUCT, pathNot: '^src/web/' },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'browser-imports-server',
      severity: 'error',
      comment: 'The SDK, the web client and src/shared run in a browser: they import only the SDK, the protocol, the web client and src/shared, never gateway/server/adapter modules.',
      from: { path: BROWSER },
      to: { path: '^src/', pathNot: '^src/(client|protocol|web|shared)/' },
    },
    {
      name: 'browser-reaches-node',
      severity: 'error',
      comment: 'Nothing the SDK, the web client or src/shared imports, directly or not, is a Node built-in.',
      from: { path: BROWSER },
      to: { path: NODE_BUILTIN, reachable: true },
    },
    {
      name: 'adapter-imports-gateway',
      severity: 'error',
      comment: 'Buses and histories are transport below the gateway: they must not import src/gateway (or the CLI).',
      from: { path: ADAPTERS },
      to: { path: '^src/(gateway|cli)/' },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'An import that does not resolve (a typo, a moved file) would hide a forbidden one.',
      from: { path: '^(src|test)/' },
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.test.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.mjs', '.json'],
    },
  },
};
