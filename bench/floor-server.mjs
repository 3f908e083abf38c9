import Fastify from 'fastify';
import pg from 'pg';

// The floor for durable ingest: the least a webhook server can do and still answer only after a commit. fastify reads
// the same bodies, JSON.parse takes the transaction's id, and concurrent webhooks are group-committed (at most two
// groups in flight, one advisory lock per group, as the service's appends are) as (id, body) rows into one table
// with a unique id. No validation, hashing, event building or projection. Between bare fastify (no storage) and the
// service, it shows how much of the gap is storing at all and how much is ours. Plain JavaScript on plain Node.
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 2 });
await pool.query('create table floor_events (seq bigserial primary key, id text not null unique, body text not null)');
const INSERT = {
  name: 'floor-group',
  text: `with l as (select pg_advisory_xact_lock(1)) insert into floor_events (id, body)
         select u.id, u.body from l, unnest($1::text[], $2::text[]) as u(id, body)`,
};
let queue = [];
let flushing = 0;
function flush() {
  if (flushing >= 2 || queue.length === 0) return;
  const group = queue;
  queue = [];
  flushing += 1;
  pool
    .query({ ...INSERT, values: [group.map((w) => w.id), group.map((w) => w.body)] })
    .then(() => group.forEach((w) => w.reply.send({ status: 'ok' })), (e) => group.forEach((w) => w.reply.code(503).send({ error: String(e) })))
    .finally(() => ((flushing -= 1), flush()));
}
const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });
app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => done(null, body));
app.post('/webhooks/bankhub', (request, reply) => {
  queue.push({ id: JSON.parse(request.body).transaction.id, body: request.body, reply });
  flush();
});
app.get('/health', async () => ({ status: 'ok' }));
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
process.once('SIGTERM', () => app.close().then(() => pool.end()).then(() => process.exit(0)));
