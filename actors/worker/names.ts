/** The worker actor's name on every node: where `run` messages go. */
export const WORKER_ACTOR_NAME = 'worker'
