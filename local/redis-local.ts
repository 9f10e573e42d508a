import { commandExists, freePort, spawnManaged, waitForPort, type ManagedProcess } from './processes.ts';

export interface RedisLocal {
  url: string;
  port: number;
  process: ManagedProcess;
}

export const redisAvailable = (): boolean => commandExists('redis-server');

/** Starts a throwaway `redis-server` on a free loopback port: no persistence, no config file. */
export async function startRedis(options: { port?: number } = {}): Promise<RedisLocal> {
  const port = options.port ?? (await freePort());
  const process = spawnManaged('redis-server', 'redis-server', [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--save', '',
    '--appendonly', 'no',
    '--protected-mode', 'yes',
  ]);
  try {
    await waitForPort(port, 10_000, process.child);
  } catch (error) {
    await process.stop();
    throw new Error(`redis-server did not start: ${(error as Error).message}\n${String(process)}`);
  }
  return { url: `redis://127.0.0.1:${port}`, port, process };
}
