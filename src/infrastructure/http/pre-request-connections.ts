import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';

/**
 * Ends, when the app closes, the connections that were accepted but have not sent a whole request yet.
 *
 * Node 20's `server.close()` waits for them: they are neither idle (its `closeIdleConnections` skips a connection before
 * its first request) nor checked for timeouts any more (close stops the check), so one client that opened a
 * connection and sent nothing (an HTTP client's spare connection, a load balancer's pre-connect) held the drain until
 * DRAIN_TIMEOUT_MS and an exit 1 (nodejs/node#63452, fixed in later Node lines). Keep-alive connections between
 * requests are Node's own to close; a request in flight is always let finish. Nothing is lost by ending these:
 * nothing was asked on them, so nothing was acknowledged, and the process is no longer ready by then.
 */
export function endPreRequestConnectionsOnClose(app: FastifyInstance): void {
  const server: Server = app.server;
  const waiting = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    waiting.add(socket);
    socket.once('close', () => waiting.delete(socket));
  });
  server.on('request', (request: { socket: Socket }) => waiting.delete(request.socket));
  // preClose runs before fastify closes the listener: wait for that, so that no connection is accepted after.
  const end = () => {
    if (server.listening) return void setImmediate(end);
    for (const socket of waiting) socket.destroy();
    waiting.clear();
  };
  app.addHook('preClose', (done) => {
    end();
    done();
  });
}
