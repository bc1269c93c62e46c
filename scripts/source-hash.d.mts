/** A hash of cmkg's TypeScript sources under `root`/src (paths and contents). */
export declare const sourceHash: (root: string) => string
