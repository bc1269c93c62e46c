/**
 * DIR-Net (WACV 2022) on STB-sized inputs: the IR9 backbone at the paper's
 * four loop points (Figure 9, Table 2) with l_max = 5, and the "No Iter."
 * baseline of Table 3 — 32 base channels, 512-unit heads, 224×224 RGB as in
 * the paper's STB model. `cmkg check programs/dirnet-stb.ts` shows each
 * model's parameters and MACs (per loop in the loop summary). The Table 3
 * miniature on synthetic STB-like hands is `table3` in
 * `src/interpreters/tf/dirnet/table3.ts`.
 */
import * as Dirnet from "../dsl/dirnet.ts"
import * as Program from "../dsl/Program.ts"

const input = [224, 224, 3] as const

export default Program.program({
  name: "dirnet-stb",
  description:
    "DIR-Net's IR9 (width 32, 512-unit heads, l_max = 5) at loop points 1–4, and the no-iteration baseline, on 224×224×3",
  models: [
    Program.model("ir9-no-iter", Dirnet.plain({ loopPoint: 3 }), input),
    ...([1, 2, 3, 4] as const).map((p) =>
      Program.model(`ir9-loop${p}`, Dirnet.dirnet({ loopPoint: p, iterations: 6 }), input),
    ),
  ],
})
