/**
 * A decoding worker of `DecodePool` (decode-pool.ts): decodes the image bytes it is sent, under its
 * own heap limit, and sends back the RGB pixels (moved, not copied) or the error.
 */
import { parentPort } from 'node:worker_threads';
import { decodeImage, ImageTooLargeError, limits } from '../data/image.js';

export interface DecodeRequest {
  id: number;
  bytes: Uint8Array;
  maxPixels: number;
}

export type DecodeReply =
  | { id: number; width: number; height: number; data: Uint8Array }
  | { id: number; error: string; tooLarge: boolean };

parentPort!.on('message', (m: DecodeRequest) => {
  let reply: DecodeReply;
  try {
    limits.maxPixels = m.maxPixels;
    const img = decodeImage(m.bytes, 'image');
    reply = { id: m.id, width: img.width, height: img.height, data: img.data };
    parentPort!.postMessage(reply, [img.data.buffer as ArrayBuffer]);
    return;
  } catch (e) {
    reply = { id: m.id, error: (e as Error).message, tooLarge: e instanceof ImageTooLargeError };
  }
  parentPort!.postMessage(reply);
});
parentPort!.postMessage({ ready: true });
