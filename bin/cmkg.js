#!/usr/bin/env node
// The bin is plain JS so it needs no TypeScript runner on PATH; tsx is
// registered here so that the CLI and the user's program modules (.ts) load.
import { register } from "tsx/esm/api"

register()
await import("../src/cli/main.ts")
