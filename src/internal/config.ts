import * as Config from "effect/Config"
import * as Option from "effect/Option"

/** The override when given, else the variable (then required). */
export const orEnv = <A>(override: A | undefined, config: Config.Config<A>): Config.Config<A> =>
  override === undefined ? config : Config.succeed(override)

/** The override when given, else the variable when set, else `undefined` (the option's default). */
export const optionalEnv = <A>(override: A | undefined, config: Config.Config<A>): Config.Config<A | undefined> =>
  override === undefined ? Config.map(Config.option(config), Option.getOrUndefined) : Config.succeed(override)
