/** SHA-256 of a string (its UTF-8 bytes) or of bytes, as 64 lowercase hex digits. */
import { platform } from '#platform';

export function sha256Hex(data: string | Uint8Array): string {
  return platform.hashing
    .sha256()
    .update(typeof data === 'string' ? new TextEncoder().encode(data) : data)
    .digestHex();
}
