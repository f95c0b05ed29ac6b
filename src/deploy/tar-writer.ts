/**
 * A minimal POSIX ustar writer: regular files and directories, names up to 255 bytes (split into
 * the prefix and name fields), owner root, fixed mtime, so that the same files always make the same
 * bytes (the bundle's checksum is its version). GNU and BSD tar both read it.
 */

const BLOCK = 512;

export interface TarEntry {
  /** A relative path with "/" separators; directories end without a slash. */
  path: string;
  type: 'file' | 'directory';
  mode: number;
  data?: Buffer;
}

/** The archive (uncompressed) of the entries, in the order given. */
export function writeTar(entries: readonly TarEntry[], mtime = 0): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    const data = entry.type === 'file' ? (entry.data ?? Buffer.alloc(0)) : Buffer.alloc(0);
    parts.push(header(entry, data.length, mtime));
    if (data.length > 0) {
      parts.push(data);
      const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
      if (pad > 0) parts.push(Buffer.alloc(pad));
    }
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}

function header(entry: TarEntry, size: number, mtime: number): Buffer {
  const h = Buffer.alloc(BLOCK);
  const full = entry.type === 'directory' ? `${entry.path}/` : entry.path;
  const { prefix, name } = splitName(full);
  h.write(name, 0, 100, 'utf8');
  octal(h, 100, 8, entry.mode & 0o7777);
  octal(h, 108, 8, 0); // uid
  octal(h, 116, 8, 0); // gid
  octal(h, 124, 12, size);
  octal(h, 136, 12, mtime);
  h.fill(0x20, 148, 156); // checksum field counts as spaces while summing
  h.write(entry.type === 'directory' ? '5' : '0', 156, 1, 'latin1');
  h.write('ustar\x0000', 257, 8, 'latin1');
  h.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return h;
}

function splitName(full: string): { prefix: string; name: string } {
  if (Buffer.byteLength(full) <= 100) return { prefix: '', name: full };
  for (let i = full.indexOf('/'); i !== -1; i = full.indexOf('/', i + 1)) {
    const prefix = full.slice(0, i);
    const name = full.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100 && name !== '') return { prefix, name };
  }
  throw new Error(`path too long for a ustar archive: ${full}`);
}

function octal(h: Buffer, offset: number, length: number, value: number): void {
  h.write(`${value.toString(8).padStart(length - 1, '0')}\0`, offset, length, 'latin1');
}
