/**
 * The contract's reference values for the `fib` job (../shared/spec/contract.md), shared by the
 * tests of every layer that computes them: the task, the scheduler, the grid and the bench.
 */
import type { FibResult } from './arith.js'

export const FIB_REFERENCE: readonly FibResult[] = [
  { n: 0, digits: 1, sha256: '5feceb66ffc86f38d952786c6d696c79c2dbc239dd4e91b46729d73a27fb57e9', sumMod61: '0' },
  { n: 1, digits: 1, sha256: '6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b', sumMod61: '0' },
  { n: 10, digits: 2, sha256: '02d20bbd7e394ad5999a4cebabac9619732c343a4cac99470c03e23ba2bdc2bc', sumMod61: '88' },
  { n: 5000, digits: 1045, sha256: '8963142965b48df3507e33fcb48926fb4ee387da20f6932cc0e8abe5f1ae1bda', sumMod61: '1558601041103539' },
  { n: 100000, digits: 20899, sha256: '9fe22f691a91170da9006226d479ad986b2f92021b7045ecfb0a5091b641b802', sumMod61: '1493263235092005186' }
]
