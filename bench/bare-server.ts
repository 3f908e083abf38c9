import Fastify from 'fastify';

/** The ceiling for ingest: fastify parses the same JSON bodies and answers 200, storing nothing. */
const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });
app.post('/webhooks/bankhub', async (request) => ({ status: 'ok', n: Object.keys(request.body as object).length }));
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
process.send?.('ready');
