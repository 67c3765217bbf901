/**
 * A TCP forwarder between a store and its database, so a test can take the database "away"
 * (refuse and cut connections) and bring it back on the same port, without touching the shared
 * PostgreSQL or Redis server that other tests use.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export class TcpProxy {
  #server: Server | null = null;
  readonly #sockets = new Set<Socket>();
  #port = 0;

  private constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  /** Starts forwarding from a free loopback port to `targetHost:targetPort`. */
  static async start(targetHost: string, targetPort: number): Promise<TcpProxy> {
    const p = new TcpProxy(targetHost, targetPort);
    await p.#listen(0);
    return p;
  }

  get port(): number {
    return this.#port;
  }

  /** Number of client connections currently forwarded. */
  get connections(): number {
    return this.#sockets.size / 2;
  }

  async #listen(port: number): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(this.targetPort, this.targetHost);
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on('close', () => this.#sockets.delete(s));
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    const addr = server.address();
    this.#port = typeof addr === 'object' && addr ? addr.port : port;
    this.#server = server;
  }

  /** Cuts every forwarded connection (an abrupt reset, as when the database process dies). */
  dropConnections(): void {
    for (const s of this.#sockets) s.resetAndDestroy();
    this.#sockets.clear();
  }

  /** Stops accepting (new connections are refused) and cuts the open ones. */
  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    this.dropConnections();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Accepts again on the same port, as a restarted database would. */
  async restart(): Promise<void> {
    if (!this.#server) await this.#listen(this.#port);
  }
}
