import http from 'http';
import type { AddressInfo } from 'net';
import type { RequestListener } from 'http';
import { listenError } from '../core/errors';

export interface HttpServerHandle {
  server: http.Server;
  port: number;
  /**
   * Stops accepting connections, closes idle keep-alives, lets requests in flight finish
   * (for up to a second: then their connections are closed too).
   */
  close(): Promise<void>;
}

/** How long close() lets requests in flight finish before it closes their connections (ms). */
const CLOSE_GRACE_MS = 1000;

/** Listens with `app` on host:port (port 0 = any free port). */
export function listen(app: RequestListener, host: string, port: number): Promise<HttpServerHandle> {
  return new Promise((resolve, reject) => {
    const server = http.createServer(app);
    // Bidders keep connections open: keep them alive longer than typical LB idle timeouts.
    server.keepAliveTimeout = 65_000;
    const failed = (err: NodeJS.ErrnoException) => reject(listenError(err, host, port, '--port / PORT'));
    server.once('error', failed);
    server.listen(port, host, () => {
      server.off('error', failed);
      resolve({
        server,
        port: (server.address() as AddressInfo).port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeIdleConnections();
            // Requests in flight get a moment; long-lived ones (the trigger event stream,
            // whose clients reconnect elsewhere with Last-Event-ID) would never end by themselves.
            setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS).unref();
          }),
      });
    });
  });
}
