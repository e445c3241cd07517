// Type-aware lint, `npm run lint` (`npm test` runs it before the test suite). Only rules that
// catch real bugs are on, no style: a promise nobody handles (a rejection there is an unhandled
// rejection, which takes a Node process down), an async function where a callback's return is
// ignored (`ws.on('message', async ...)`, `setTimeout(async ...)`), awaiting a non-promise,
// throwing a non-Error.
//
// Fire and forget is written `void p` and allowed only where `p` cannot reject or handles its
// own failure; anything else gets a `.catch((err) => log...)`.
//
// TypeScript versions: builds and type checks use the native compiler (typescript 7, installed as
// `typescript-native`, see package.json scripts). typescript-eslint needs TypeScript's JS API,
// which 7.0 does not have, so the `typescript` package is 6.0, the last JS release, which has
// the same language, options and checks as 7.0. When typescript-eslint supports a published
// TypeScript 7 (its `@typescript/native` backend, 7.1), the two can become one again.
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
  // dotfiles are scratch: TypeScript's include globs skip them too, so no tsconfig has them
  { ignores: ['dist/**', 'data/**', 'bench/**', 'deploy/**', '**/.*'] },
  {
    files: ['src/**/*.ts', 'test/**/*.ts', 'scripts/**/*.mjs'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: {
        // tsconfig.test.json is tsconfig.json (src/) plus test/, so one program covers both;
        // src/web has its own (DOM, bundler resolution); scripts/tsconfig.json types the .mjs scripts.
        project: ['./tsconfig.test.json', './src/web/tsconfig.json', './scripts/tsconfig.json'],
        tsconfigRootDir: import.meta.dirname,
      },
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          // node:test's describe/it/test return a promise for the runner, which reports failures itself.
          allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite'] }],
        },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/only-throw-error': 'error',
    },
  },
);
