/**
 * Command-line flags for the `confab` commands: node:util `parseArgs`, strict, with confab's own
 * wording for mistakes (a UsageError, which the commands turn into exit code 2 and their usage).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './cluster-plan.js';

/** How a command words each kind of mistake. */
export interface ArgMistakes {
  /** An option the command does not take (`name` without dashes, `raw` as typed: `--x`, `-x`, `--x=1`), or a value given to a flag. */
  unknown(name: string, raw: string): string;
  /** A positional argument where the command takes none. Default: `unexpected argument "x"`. */
  positional?(value: string): string;
  /**
   * A string option without its value ('' when it was the last argument, else the next argument,
   * which starts with a dash). Throws the command's UsageError; when it does not, the mistake
   * is reported as `--name needs a value`.
   */
  value?(name: string, value: string): void;
}

const PARSE_ERRORS = new Set(['ERR_PARSE_ARGS_UNKNOWN_OPTION', 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE', 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL']);

/** `parseArgs(config)`; a mistake throws UsageError worded by `mistakes` (found again in parseArgs' own tokens). */
export function parseCommandArgs<T extends ParseArgsConfig & { args: string[]; strict: true }>(config: T, mistakes: ArgMistakes): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (e) {
    if (!PARSE_ERRORS.has((e as { code?: string }).code ?? '')) throw e;
    const options = config.options ?? {};
    const { tokens } = parseArgs({ args: config.args, options, strict: false, allowPositionals: true, tokens: true });
    for (const t of tokens) {
      if (t.kind === 'positional') {
        if (!config.allowPositionals) throw new UsageError(mistakes.positional?.(t.value) ?? `unexpected argument ${JSON.stringify(t.value)}`);
        continue;
      }
      if (t.kind !== 'option') continue;
      const def = Object.hasOwn(options, t.name) ? options[t.name] : undefined;
      if (def === undefined || (def.type === 'boolean' && t.value !== undefined)) throw new UsageError(mistakes.unknown(t.name, config.args[t.index]!));
      if (def.type === 'string' && (t.value === undefined || (!t.inlineValue && t.value.startsWith('-')))) {
        mistakes.value?.(t.name, t.value ?? '');
        throw new UsageError(`--${t.name} needs a value${t.value === undefined ? '' : ` (write --${t.name}=${t.value} for one that starts with a dash)`}`);
      }
    }
    throw new UsageError((e as Error).message);
  }
}
