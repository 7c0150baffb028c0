/** An error from the mesh layer; `code` is stable and meant for programs. */
export class MeshError extends Error {
  readonly code: string
  constructor (code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'MeshError'
    this.code = code
  }
}
