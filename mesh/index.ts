export { createMesh, ACTOR_PROTOCOL, type Mesh, type MeshOptions } from './mesh.js'
export { loadOrCreateIdentity } from './identity.js'
export { encodeFrame, FrameDecoder, decodePayload } from './frames.js'
export { MeshError } from './errors.js'
