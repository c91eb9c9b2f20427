import * as Config from "effect/Config"
import type * as Duration from "effect/Duration"
import * as Option from "effect/Option"

/** The override when given, else the variable (then required). */
export const orEnv = <A>(override: A | undefined, config: Config.Config<A>): Config.Config<A> =>
  override === undefined ? config : Config.succeed(override)

/** The override when given, else the variable when set, else `undefined` (the option's default). */
export const optionalEnv = <A>(override: A | undefined, config: Config.Config<A>): Config.Config<A | undefined> =>
  override === undefined ? Config.map(Config.option(config), Option.getOrUndefined) : Config.succeed(override)

/**
 * `Config.duration`, refusing a negative value: `Config.duration` alone reads "-5 seconds" as zero,
 * which would silently turn a typo into "no timeout" or "no skew".
 */
export const nonNegativeDuration = (name: string): Config.Config<Duration.Duration> =>
  Config.zipWith(
    Config.validate(Config.string(name), {
      message: "Expected a non-negative duration, e.g. 10 seconds",
      validation: (text) => !text.trim().startsWith("-")
    }),
    Config.duration(name),
    (_, duration) => duration
  )
