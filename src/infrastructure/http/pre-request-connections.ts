import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';

/**
 * Ends, when the app closes, the connections on which the client has not sent a byte.
 *
 * Node 20's `server.close()` waits for them: they are neither idle (its `closeIdleConnections` skips a connection before
 * its first request) nor checked for timeouts any more (close stops the check), so one client that opened a
 * connection and sent nothing (an HTTP client's spare connection, a load balancer's pre-connect) held the drain until
 * DRAIN_TIMEOUT_MS and an exit 1 (nodejs/node#63452, fixed in later Node lines). Keep-alive connections between
 * requests are Node's own to close; a request in flight is always let finish. Nothing is lost by ending these:
 * nothing was asked on them, so nothing was acknowledged, and the process is no longer ready by then. The work is one
 * set entry a connection and none a request: which connections sent nothing is read at close (`bytesRead`).
 */
export function endPreRequestConnectionsOnClose(app: FastifyInstance): void {
  const server: Server = app.server;
  const open = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    open.add(socket);
    socket.once('close', () => open.delete(socket));
  });
  // preClose runs before fastify closes the listener: wait for that, so that no connection is accepted after.
  const end = () => {
    if (server.listening) return void setImmediate(end);
    for (const socket of open) if (socket.bytesRead === 0) socket.destroy();
  };
  app.addHook('preClose', (done) => {
    end();
    done();
  });
}
