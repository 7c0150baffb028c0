/** Bounded fuzzing in `npm test` (the long run is `node dist/vasm/fuzz.js`). */
import { test } from 'node:test'
import { fuzz } from './fuzz.js'

const SEED = Number(process.env.VASM_SEED ?? 7)

test(`fuzz: decoder, assembler, verifier and engines give only clean errors (seed ${SEED})`, () => {
  console.log(`fuzz seed ${SEED}`)
  const stats = fuzz({ cases: 1500, seed: SEED })
  console.log(JSON.stringify(stats))
})
