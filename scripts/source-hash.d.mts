/** A hash of cmkg's TypeScript sources under `root`/src (paths and contents). */
export declare const sourceHash: (root: string) => string
/** Whether `root`/dist is the build of `root`/src as it is now (its SOURCE-HASH matches). */
export declare const bundleIsFresh: (root: string) => boolean
