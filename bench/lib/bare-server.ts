// The cold-start baseline (bench/cold-start.ts): Fastify under tsx answering GET /login, and
// nothing else: what starting any Fastify app this way costs before the demo's own work.
import Fastify from 'fastify'

const app = Fastify({ logger: false })
app.get('/login', async () => 'ok')
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' })
process.on('SIGTERM', () => { void app.close().then(() => process.exit(0)) })
