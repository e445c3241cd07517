import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { startNats, startNatsCluster } from '../testkit/nats.js';

const cluster = process.argv[2] === 'c';
const c = cluster ? await startNatsCluster(3) : undefined;
const s = cluster ? undefined : await startNats();
const url = c ? c.urls.split(',') : [s!.url];
const nc = await connect({ servers: url });
const jsm = await jetstreamManager(nc);
const si = await jsm.streams.add({ name: 'T', subjects: ['t.hist.>'], allow_direct: true, max_msgs_per_subject: 100, duplicate_window: 120e9, num_replicas: cluster ? 3 : 1 } as any);
console.log('created', si.created, si.config.allow_direct);
const si2 = await jsm.streams.add({ name: 'T', subjects: ['t.hist.>'], allow_direct: true, max_msgs_per_subject: 100, duplicate_window: 120e9, num_replicas: cluster ? 3 : 1 } as any);
console.log('created again', si2.created);
const js = jetstream(nc);
let a = await js.publish('t.hist.a', 'one', { msgID: 'x1', expect: { lastSubjectSequence: 0 } });
console.log('pub1', a);
try { a = await js.publish('t.hist.a', 'two', { msgID: 'x2', expect: { lastSubjectSequence: 0 } }); console.log('BAD pub2', a); } catch (e: any) { console.log('pub2 err', e.name, e.message, e.code, e.api_error ?? e.apiError); }
a = await js.publish('t.hist.a', 'one-again', { msgID: 'x1', expect: { lastSubjectSequence: 0 } });
console.log('dup with wrong expect', a);
a = await js.publish('t.hist.b', 'b1', { msgID: 'b1', expect: { lastSubjectSequence: 0 } });
a = await js.publish('t.hist.a', 'a2', { msgID: 'x3', expect: { lastSubjectSequence: 1 } });
console.log('pub a2', a);
try { const m = await jsm.streams.getMessage('T', { next_by_subj: 't.hist.a', seq: 2 } as any); console.log('msg.get next', m?.seq, m?.string()); } catch (e: any) { console.log('msg.get next err', e.message); }
const d = await jsm.direct.getMessage('T', { next_by_subj: 't.hist.a', seq: 2 });
console.log('direct next', d?.seq, d?.string());
const l = await jsm.streams.getMessage('T', { last_by_subj: 't.hist.a' });
console.log('last', l?.seq);
const nf = await jsm.streams.getMessage('T', { last_by_subj: 't.hist.zz' }).catch((e: any) => 'err ' + e.message);
console.log('notfound', nf);
const nf2 = await jsm.direct.getMessage('T', { last_by_subj: 't.hist.zz' }).catch((e: any) => 'err ' + e.message);
console.log('notfound direct', nf2);
const oc = await js.consumers.get('T', { filter_subjects: 't.hist.a', opt_start_seq: 1, name_prefix: 'confab_n1' } as any);
const it = await oc.fetch({ max_messages: 10, expires: 1000 });
for await (const m of it) { console.log('oc', m.seq, m.string(), m.info.pending); if (m.info.pending === 0) break; }
const info = await jsm.streams.info('T', { subjects_filter: 't.hist.>' });
console.log('subjects', info.state.subjects, info.state.num_subjects);
await nc.close();
if (c) await c.stop(); else await s!.close();
