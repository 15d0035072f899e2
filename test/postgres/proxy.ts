/**
 * A TCP proxy in front of PostgreSQL that can make its open connections half-open: `freeze`
 * stops them passing bytes either way while both sockets stay open, as a dead network path
 * or a stalled peer would. Connections opened later pass normally. `loseReplyTo(marker)`
 * lets the next request containing `marker` reach the server, then drops the connection the
 * moment the server answers: the request ran (and committed), the client never hears so.
 */
import { Effect, type Scope } from "effect"
import { createConnection, createServer, type Socket } from "node:net"

export interface Proxy {
  readonly port: number
  /** Stops every connection open now from passing bytes, without closing it. */
  readonly freeze: () => void
  /** Drops the connection that sends `marker` next, as soon as the server replies to it. */
  readonly loseReplyTo: (marker: string) => void
  /** How many replies were lost so far. */
  readonly lost: () => number
}

export const make = (target: URL): Effect.Effect<Proxy, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() =>
      new Promise<{ readonly proxy: Proxy; readonly close: () => void }>((resolve, reject) => {
        const pairs = new Set<
          { readonly client: Socket; readonly upstream: Socket; frozen: boolean; losing: boolean }
        >()
        let marker: Buffer | undefined
        let lost = 0
        const server = createServer((client) => {
          const upstream = createConnection({ host: target.hostname, port: Number(target.port || 5432) })
          const pair = { client, upstream, frozen: false, losing: false }
          pairs.add(pair)
          client.on("data", (chunk) => {
            if (marker !== undefined && chunk.includes(marker)) {
              marker = undefined
              pair.losing = true
            }
            if (!pair.frozen) upstream.write(chunk)
          })
          upstream.on("data", (chunk) => {
            if (pair.losing) {
              lost++
              client.destroy()
              upstream.destroy()
              return
            }
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
              },
              loseReplyTo: (text) => {
                marker = Buffer.from(text, "utf8")
              },
              lost: () => lost
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
