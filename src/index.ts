/**
 * cmkg as a library: the algebra a program module is written in.
 *
 * ```ts
 * import { Net, Program, Zoo } from "cmkg"
 *
 * export default Program.program({
 *   name: "my-net",
 *   description: "a small ResNet on 64×64 RGB",
 *   models: [Program.model("net", Zoo.smallResNet({ outputs: 63 }), [64, 64, 3])],
 * })
 * ```
 *
 * `cmkg check` / `cmkg run` give such a module its meanings; `cmkg/laws`
 * holds what a user needs to write property tests of their own values.
 *
 * @module
 */
export * as Data from "./dsl/Data.ts"
export * as Dirnet from "./dsl/dirnet.ts"
export * as Experiment from "./dsl/Experiment.ts"
export * as Loss from "./dsl/Loss.ts"
export * as Net from "./dsl/Net.ts"
export * as Optimizer from "./dsl/Optimizer.ts"
export * as Params from "./dsl/Params.ts"
export * as Program from "./dsl/Program.ts"
export * as Shape from "./dsl/Shape.ts"
export * as Step from "./dsl/Step.ts"
export * as Zoo from "./dsl/zoo.ts"
