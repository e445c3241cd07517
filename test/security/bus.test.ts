/**
 * Security suite, the bus is not open (issue 10 item 7). Before: `confab nats-config`, `confab
 * cluster up` and the deploy files rendered NATS configs without any authorization, so anyone who
 * reached port 4222 could publish on the gateways' subjects — e.g. a forged presence `state` for a
 * node, or a room message with any `from`, delivered to every member. Now the generated config
 * requires client credentials, a client without them is refused by nats-server, and a gateway
 * given NATS_USER / NATS_PASS connects and works.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect } from '@nats-io/transport-node';
import pino from 'pino';
import { loadConfig } from '../../src/config/config.js';
import { createNatsAdapters, renderNatsConfig } from '../../src/nats/index.js';
import { startTestGateway, TEST_SECRET, type TestGateway } from '../../src/testkit/gateway.js';
import { startNats, type NatsServer } from '../../src/procs/nats.js';
import { joinRoom, RawClient } from '../../src/testkit/raw-client.js';

const AUTH = { NATS_USER: 'confab', NATS_PASS: 'bus-password-0123456789' };

describe('the NATS bus requires authentication', () => {
  let nats: NatsServer & { close(): Promise<void> };
  let gw: TestGateway | undefined;
  before(async () => {
    const rendered = renderNatsConfig({ ...AUTH, NATS_SERVER_NAME: 'sec', NATS_STORE_DIR: '/tmp/unused', NATS_MAX_MEM_STORE: '64MB' });
    const block = /authorization \{[\s\S]*?\n\}/.exec(rendered)?.[0];
    assert.ok(block, 'the generated config has an authorization block');
    // the generated block, as nats-server runs it (on kernel ports, from the test kit)
    nats = await startNats({ jetstream: true, extraConfig: block });
  });
  after(async () => {
    await gw?.close();
    await nats?.close();
  });

  it('a client without credentials, or with a wrong password, is refused', async () => {
    await assert.rejects(connect({ servers: nats.url, reconnect: false, timeout: 3000 }), /Authorization Violation|AUTHORIZATION|authentication/i);
    await assert.rejects(connect({ servers: nats.url, reconnect: false, timeout: 3000, user: 'confab', pass: 'guess-0123456789' }), /Authorization Violation|AUTHORIZATION|authentication/i);
    const nc = await connect({ servers: nats.url, reconnect: false, timeout: 3000, user: AUTH.NATS_USER, pass: AUTH.NATS_PASS });
    await nc.close();
  });

  it('confab cluster up renders every NATS config with its credentials (harnesses without them render open, on purpose)', async () => {
    const { planCluster, natsConfigFor } = await import('../../src/cli/cluster-plan.js');
    const plan = planCluster({ regions: 2, natsPerRegion: 1, gatewaysPerRegion: 1, basePort: 31000, dir: '/tmp/unused-cluster', regionNames: ['ord', 'syd'] }, 'x');
    const r = plan.regions[0]!;
    const text = natsConfigFor(plan, r, r.nats[0]!, { user: 'confab', pass: 'cluster-password-0123' });
    assert.match(text, /authorization \{\n {2}user: "confab"\n {2}password: "cluster-password-0123"\n\}/);
    assert.doesNotMatch(natsConfigFor(plan, r, r.nats[0]!), /authorization/);
  });

  it('a gateway with NATS_USER / NATS_PASS connects and delivers', async () => {
    const env = { ...AUTH, NATS_URL: nats.url, CONFAB_SECRET: TEST_SECRET, CONFAB_NODE_ID: 'authed' };
    const { bus, history } = await createNatsAdapters(loadConfig(env), pino({ level: 'silent' }), { env });
    gw = await startTestGateway({ bus, history, env });
    const { c } = await RawClient.session(gw, 'bus.user');
    try {
      await joinRoom(c, 'busroom');
      c.send({ t: 'pub', id: 'b1', room: 'busroom', text: 'over an authenticated bus' });
      assert.equal((await c.next('msg', (m) => m.id === 'b1')).text, 'over an authenticated bus');
    } finally {
      c.close();
    }
  });
});
