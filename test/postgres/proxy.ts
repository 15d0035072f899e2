/**
 * A TCP proxy in front of PostgreSQL that can make its open connections half-open: `freeze`
 * stops them passing bytes either way while both sockets stay open, as a dead network path
 * or a stalled peer would. Connections opened later pass normally.
 */
import { Effect, type Scope } from "effect"
import { createConnection, createServer, type Socket } from "node:net"

export interface Proxy {
  readonly port: number
  /** Stops every connection open now from passing bytes, without closing it. */
  readonly freeze: () => void
}

export const make = (target: URL): Effect.Effect<Proxy, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() =>
      new Promise<{ readonly proxy: Proxy; readonly close: () => void }>((resolve, reject) => {
        const pairs = new Set<{ readonly client: Socket; readonly upstream: Socket; frozen: boolean }>()
        const server = createServer((client) => {
          const upstream = createConnection({ host: target.hostname, port: Number(target.port || 5432) })
          const pair = { client, upstream, frozen: false }
          pairs.add(pair)
          client.on("data", (chunk) => {
            if (!pair.frozen) upstream.write(chunk)
          })
          upstream.on("data", (chunk) => {
            if (!pair.frozen) client.write(chunk)
          })
          const close = () => {
            pairs.delete(pair)
            client.destroy()
            upstream.destroy()
          }
          client.on("close", close)
          upstream.on("close", close)
          client.on("error", close)
          upstream.on("error", close)
        })
        server.once("error", reject)
        server.listen(0, "127.0.0.1", () => {
          const address = server.address()
          const port = typeof address === "object" && address !== null ? address.port : 0
          resolve({
            proxy: {
              port,
              freeze: () => {
                for (const pair of pairs) pair.frozen = true
              }
            },
            close: () => {
              for (const pair of pairs) {
                pair.client.destroy()
                pair.upstream.destroy()
              }
              server.close()
            }
          })
        })
      })
    ),
    ({ close }) => Effect.sync(close)
  ).pipe(Effect.map(({ proxy }) => proxy))
