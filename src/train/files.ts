/** Atomic, durable file writes (see checkpoint-store.ts). */
export { writeFileAtomic, writeDurable } from './checkpoint-store.js';
