import { inspect } from "node:util"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as References from "effect/References"

/**
 * A logger that keeps every line, down to Debug, both as logfmt and as the inspected structured
 * entry (message, level, annotations, cause): whatever a user's logger could render.
 */
export const captureLogs = () => {
  const lines: Array<string> = []
  const logger = Logger.make((options) => {
    lines.push(
      Logger.formatLogFmt.log(options),
      inspect(Logger.formatStructured.log(options), { depth: 10 }),
      options.cause === undefined ? "" : String(options.cause)
    )
  })
  const withLogs = <A, E, R>(self: Effect.Effect<A, E, R>) =>
    self.pipe(Effect.provide(Logger.layer([logger])), Effect.provideService(References.MinimumLogLevel, "Debug"))
  return { lines, withLogs }
}
