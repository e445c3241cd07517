/**
 * `confab cluster …` and `confab nats-config` flags go through node:util parseArgs (strict) and keep
 * their defaults and their wording for every mistake (each a UsageError: exit 2 with the usage).
 */
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { UsageError } from '../../src/cli/cluster-plan.js';
import { parseClusterCommandArgs } from '../../src/cli/cluster.js';
import { parseNatsConfigArgs } from '../../src/cli/nats-config.js';

function usage(fn: () => unknown, message: string): void {
  assert.throws(fn, (e: unknown) => e instanceof UsageError && e.message === message, message);
}

describe('confab cluster flags', () => {
  it('defaults, both spellings, the last of a repeated flag', () => {
    const d = parseClusterCommandArgs([], 'up');
    assert.deepEqual({ ...d, regionNames: d.regionNames.slice(0, 2) }, { regions: 2, natsPerRegion: 3, gatewaysPerRegion: 2, basePort: 14000, dir: resolve('.confab-cluster'), regionNames: ['ord', 'syd'] });
    const o = parseClusterCommandArgs(['--regions=1', '--nats-per-region', '1', '--gateways-per-region', '4', '--base-port', '15000', '--dir', 'a', '--dir', 'b', '--region-names', 'x1'], 'up');
    assert.deepEqual(o, { regions: 1, natsPerRegion: 1, gatewaysPerRegion: 4, basePort: 15000, dir: resolve('b'), regionNames: ['x1'] });
    assert.equal(parseClusterCommandArgs(['--dir=-odd'], 'status').dir, resolve('-odd'), 'a value starting with a dash, written with =');
  });

  it('each usage mistake is a UsageError naming the flag and what it needs (unknown, missing value, out of range, bad names)', () => {
    const allowed = '--regions --nats-per-region --gateways-per-region --base-port --dir --region-names --wan-latency --wan-loss';
    usage(() => parseClusterCommandArgs(['--bogus'], 'up'), `unknown option --bogus (allowed: ${allowed})`);
    usage(() => parseClusterCommandArgs(['--bogus=1'], 'up'), `unknown option --bogus (allowed: ${allowed})`);
    usage(() => parseClusterCommandArgs(['--regions', '2'], 'down'), 'unknown option --regions (allowed: --dir)');
    usage(() => parseClusterCommandArgs(['-x'], 'up'), 'unexpected argument "-x"');
    usage(() => parseClusterCommandArgs(['extra'], 'roll'), 'unexpected argument "extra"');
    usage(() => parseClusterCommandArgs(['--regions'], 'up'), '--regions needs an integer, got ""');
    usage(() => parseClusterCommandArgs(['--regions', '--dir', 'x'], 'up'), '--regions needs an integer, got "--dir"');
    usage(() => parseClusterCommandArgs(['--regions', '10'], 'up'), '--regions must be between 1 and 9, got 10');
    usage(() => parseClusterCommandArgs(['--dir'], 'status'), '--dir needs a path');
    usage(() => parseClusterCommandArgs(['--dir='], 'status'), '--dir needs a path');
    usage(() => parseClusterCommandArgs(['--region-names'], 'up'), '--region-names must list distinct names');
    usage(() => parseClusterCommandArgs(['--region-names', 'Bad'], 'up'), 'bad region name "Bad" (lowercase letters and digits)');
    usage(() => parseClusterCommandArgs(['--regions', '3', '--region-names', 'ord,syd'], 'up'), '--regions 3 needs as many --region-names (have 2)');
  });
});

describe('confab nats-config flags', () => {
  it('with no flags: check off, resolve on; --check, --no-resolve, --out (the last one wins)', () => {
    assert.deepEqual(parseNatsConfigArgs([]), { check: false, resolve: true });
    assert.deepEqual(parseNatsConfigArgs(['--check', '--no-resolve', '--out=f']), { out: 'f', check: true, resolve: false });
    assert.deepEqual(parseNatsConfigArgs(['--out', 'a', '--out', 'b']), { out: 'b', check: false, resolve: true });
  });

  it('each usage mistake is a UsageError naming the argument (unknown, --out without a file)', () => {
    usage(() => parseNatsConfigArgs(['--bogus']), 'unknown argument "--bogus"');
    usage(() => parseNatsConfigArgs(['-x']), 'unknown argument "-x"');
    usage(() => parseNatsConfigArgs(['file']), 'unknown argument "file"');
    usage(() => parseNatsConfigArgs(['--check=1']), 'unknown argument "--check=1"');
    usage(() => parseNatsConfigArgs(['--out']), '--out needs a file');
    usage(() => parseNatsConfigArgs(['--out=']), '--out needs a file');
    usage(() => parseNatsConfigArgs(['--out', '--check']), '--out needs a file');
  });
});
