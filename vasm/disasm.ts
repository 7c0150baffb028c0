/**
 * Program → canonical text (vasm/README.md "Canonical text"): labels on their own line as
 * `name:`, each instruction on its own line indented by two spaces, mnemonics upper case,
 * registers `rN`, operands separated by ", ", immediates in plain decimal, no comments, no blank
 * lines, a newline after every line. Targets without a label get a generated name `L<pc>`
 * (`L<pc>_<k>` if that is taken), so any verified program disassembles to text that assembles
 * back to the same instructions.
 */
import { Op } from './isa.js'
import { formatInstr, type Instr, type Program } from './program.js'

/** Label operands: JMP and CALL take only a label, JIF and JZ take rs then a label. */
export function targetsOf (ins: Instr): number[] {
  const out: number[] = []
  const op = ins.op
  if (op === Op.JMP || op === Op.CALL) out.push(Number(ins.args[0]))
  if (op === Op.JIF || op === Op.JZ) out.push(Number(ins.args[1]))
  return out
}

/** The label names at each pc: those defined there (in order), or one generated name for an unnamed target. */
export function labelNames (p: Program): Map<number, string[]> {
  const byPc = new Map<number, string[]>()
  const taken = new Set<string>()
  for (const l of p.labels) {
    const list = byPc.get(l.pc) ?? []
    list.push(l.name)
    byPc.set(l.pc, list)
    taken.add(l.name)
  }
  for (const ins of p.instrs) {
    for (const t of targetsOf(ins)) {
      if (byPc.has(t)) continue
      let name = `L${t}`
      for (let k = 1; taken.has(name); k++) name = `L${t}_${k}`
      taken.add(name)
      byPc.set(t, [name])
    }
  }
  return byPc
}

export function disassemble (p: Program): string {
  const names = labelNames(p)
  const nameOf = (pc: number): string => names.get(pc)?.[0] ?? `L${pc}`
  const lines: string[] = []
  for (let pc = 0; pc <= p.instrs.length; pc++) {
    for (const n of names.get(pc) ?? []) lines.push(`${n}:`)
    if (pc < p.instrs.length) lines.push('  ' + formatInstr(p.instrs[pc], nameOf))
  }
  return lines.map(l => l + '\n').join('')
}
