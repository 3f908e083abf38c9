import Fastify from 'fastify';

// The ceiling for ingest: fastify parses the same JSON bodies and answers 200, storing nothing. Plain JavaScript on
// plain Node, as the compiled service runs. SIGTERM closes it so that a CPU profile (--cpu-prof) is written.
const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });
app.post('/webhooks/bankhub', async (request) => ({ status: 'ok', n: Object.keys(request.body).length }));
app.get('/health', async () => ({ status: 'ok' }));
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
process.once('SIGTERM', () => app.close().then(() => process.exit(0)));
