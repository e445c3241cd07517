/**
 * Child-process entry of the abuse client (`spawnAttacker`): reads an AttackPlan as JSON on stdin,
 * runs it, prints `ready` when its sockets are open and the frames begin, then the AttackResult as
 * one JSON line on stdout.
 */
import { runAttack, type AttackPlan } from './attacker.js';

let input = '';
process.stdin.on('data', (d: Buffer) => (input += d.toString()));
process.stdin.on('end', () => {
  runAttack(JSON.parse(input) as AttackPlan, () => process.stdout.write('ready\n')).then(
    (r) => {
      process.stdout.write(`${JSON.stringify(r)}\n`);
      process.exit(0);
    },
    (e: unknown) => {
      process.stderr.write(`${String((e as Error).stack ?? e)}\n`);
      process.exit(1);
    },
  );
});
