/**
 * The last `limit` bytes of an output stream, kept in the chunks as they came (copied, so a caller
 * may reuse its buffer) and joined only when read. Memory stays within `limit` plus one chunk.
 * A limit of 0 keeps nothing. Used for a task's output tails in the Controller's table and for a
 * Russula member's stdout / stderr tails in its result.
 */
export class OutputTail {
  #chunks: Buffer[] = [];
  #bytes = 0;
  constructor(readonly limit: number) {}

  push(data: Uint8Array): void {
    if (this.limit === 0) return;
    const chunk = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    this.#chunks.push(data.byteLength > this.limit ? Buffer.from(chunk.subarray(chunk.length - this.limit)) : Buffer.from(chunk));
    this.#bytes += Math.min(data.byteLength, this.limit);
    while (this.#bytes - this.#chunks[0]!.length >= this.limit) this.#bytes -= this.#chunks.shift()!.length;
  }

  toBuffer(): Buffer {
    const all = Buffer.concat(this.#chunks);
    return all.length > this.limit ? all.subarray(all.length - this.limit) : all;
  }

  /** The tail as UTF-8 (a character cut at its start becomes U+FFFD). */
  text(): string {
    return this.toBuffer().toString('utf8');
  }
}
