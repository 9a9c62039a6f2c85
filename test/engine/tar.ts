// Builds tar archives byte by byte, for the header forms GNU tar does not make on request:
// the ustar prefix field, GNU long names ('L'), PAX headers ('x'), base-256 sizes.
import { spawnSync } from 'node:child_process';

export interface TarEntry {
  name: string;
  data?: Buffer | string;
  /** Type flag: '0' file (default), '5' folder, 'L' GNU long name, 'x' PAX header. */
  type?: string;
  /** ustar prefix field (POSIX ustar: the path's leading folders). */
  prefix?: string;
  /** Write the size field in base-256 (as tar does for sizes of 8 GiB and more). */
  base256?: boolean;
  /** The size field's value, when it must differ from the data's length. */
  sizeField?: number;
}

function header(e: TarEntry, size: number): Buffer {
  const h = Buffer.alloc(512);
  h.write(e.name.slice(0, 100), 0, 'utf8');
  h.write('0000644\0', 100, 'latin1');
  h.write('0000000\0', 108, 'latin1');
  h.write('0000000\0', 116, 'latin1');
  if (e.base256) {
    h[124] = 0x80;
    h.writeBigUInt64BE(BigInt(size), 128);
  } else {
    h.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  }
  h.write('00000000000\0', 136, 'latin1');
  h.write('        ', 148, 'latin1');
  h.write(e.type ?? '0', 156, 'latin1');
  h.write('ustar\0', 257, 'latin1');
  h.write('00', 263, 'latin1');
  if (e.prefix) h.write(e.prefix, 345, 'utf8');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return h;
}

export function tar(entries: TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = Buffer.from(e.data ?? '');
    parts.push(header(e, e.sizeField ?? data.length), data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** A PAX 'x' header entry carrying `records` for the entry after it. */
export function pax(records: Record<string, string>): TarEntry {
  let data = '';
  for (const [k, v] of Object.entries(records)) {
    const body = ` ${k}=${v}\n`;
    let len = body.length + 1;
    while (`${len}${body}`.length !== len) len++;
    data += `${len}${body}`;
  }
  return { name: 'PaxHeaders.0/x', type: 'x', data };
}

/** A GNU 'L' entry: the long name of the entry after it. */
export function longName(name: string): TarEntry {
  return { name: '././@LongLink', type: 'L', data: `${name}\0` };
}

export const HEX = 'a'.repeat(64);

export function hasCommand(command: string): boolean {
  return spawnSync(command, ['--version'], { stdio: 'ignore' }).status === 0;
}
