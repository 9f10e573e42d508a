import { createServer, type Socket } from 'node:net';
import type { RedisLocal } from '../../local/redis-local.ts';

/**
 * A TCP server that accepts connections and never answers: what a hung or partitioned Redis looks like to
 * a client. Shaped like `startRedis()`'s result so the global setup can swap it in.
 */
export async function startBlackHole(): Promise<RedisLocal> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const stop = async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    process: { name: 'black-hole', child: undefined as never, stop, toString: () => 'black-hole' },
  };
}
