import * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"

/** The override when given, else the variable (then required). */
export const orEnv = <A>(override: A | undefined, config: Config.Config<A>): Config.Config<A> =>
  override === undefined ? config : Config.succeed(override)

/** The override when given, else the variable when set, else `undefined` (the option's default). */
export const optionalEnv = <A>(override: A | undefined, config: Config.Config<A>): Config.Config<A | undefined> =>
  override === undefined ? Config.map(Config.option(config), Option.getOrUndefined) : Config.succeed(override)

const NonNegativeDurationFromString = Schema.DurationFromString.check(
  Schema.makeFilter((duration) => !Duration.isNegative(duration), {
    expected: "a non-negative duration, e.g. 10 seconds"
  })
)

/**
 * `Config.Duration`, refusing a negative value: Effect 4 durations may be negative, and a
 * "-5 seconds" typo must not become a negative timeout or skew.
 */
export const nonNegativeDuration = (name: string): Config.Config<Duration.Duration> =>
  Config.schema(NonNegativeDurationFromString, name)
