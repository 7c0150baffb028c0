/**
 * The `vasm` kind, both sides: `createVasmKind` (the job side, given to the scheduler), the `vasm`
 * actor (worker side on the main thread: program bytes by hash, actor.ts) and the default export
 * of task.ts (worker side in the Piscina threads). See ARCHITECTURE.md, "job kinds".
 */
export { createVasmKind, vasmParams, ESTIMATE_FUEL_PER_MS, VASM_TASK_KIND } from './job.js'
export { createVasmActor, vasmService, VASM_ACTOR_NAME, ERR_PROGRAM_UNAVAILABLE, ERR_PROGRAM_UNKNOWN } from './actor.js'
export { createProgramStore, sha256Hex, DEFAULT_PROGRAM_STORE_BYTES, type ProgramStore } from './programs.js'
export { validateVasmParams, splitVasm, reduceValues, MAX_PROGRAM_BYTES, MAX_SEGMENTS, MAX_FUEL, DEFAULT_FUEL, MAX_ARGS_MAP, MAX_ARGS_SINGLE } from './params.js'
export type { VasmParams, VasmSegment, VasmValue, VasmResult, Reducer } from './params.js'
export { default as vasmTasks, runVasmTask, ERR_PROGRAM_MISMATCH } from './task.js'
