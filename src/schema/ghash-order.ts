/**
 * QEMU's input visitor finds unexpected members by walking a GLib hash table
 * of the keys it has not consumed. Reporting the same member as QEMU when
 * several are unexpected means iterating in that table's slot order, which
 * this reproduces: g_str_hash (djb2), index = hash * 11 % prime, quadratic
 * probing, and GLib's growth rule.
 */
const PRIME_MOD = [1, 2, 3, 7, 13, 31, 61, 127, 251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521];
const MIN_SHIFT = 3;

function gStrHash(key: string): number {
  let hash = 5381;
  for (const byte of Buffer.from(key, 'utf8')) {
    const signed = byte > 127 ? byte - 256 : byte;
    hash = (Math.imul(hash, 33) + signed) >>> 0;
  }
  return hash < 2 ? 2 : hash;
}

class GHashTableModel {
  private shift = MIN_SHIFT;
  private slots: Array<{ key: string; hash: number } | null> = new Array(1 << MIN_SHIFT).fill(null);
  private count = 0;

  insert(key: string): void {
    this.place({ key, hash: gStrHash(key) });
    this.count++;
    if (this.slots.length <= this.count + Math.floor(this.count / 16)) this.resize();
  }

  keys(): string[] {
    return this.slots.filter((slot) => slot !== null).map((slot) => slot!.key);
  }

  private place(entry: { key: string; hash: number }): void {
    const mask = this.slots.length - 1;
    // GLib multiplies in guint: the product wraps at 2^32 before the modulo.
    let index = (Math.imul(entry.hash, 11) >>> 0) % PRIME_MOD[this.shift]!;
    let step = 0;
    while (this.slots[index] !== null) index = (index + ++step) & mask;
    this.slots[index] = entry;
  }

  private resize(): void {
    let size = Math.floor(this.count * 1.333);
    let shift = 0;
    while (size) {
      size >>= 1;
      shift++;
    }
    this.shift = Math.max(shift, MIN_SHIFT);
    const old = this.slots.filter((slot) => slot !== null) as Array<{ key: string; hash: number }>;
    this.slots = new Array(1 << this.shift).fill(null);
    for (const entry of old) this.place(entry);
  }
}

/** The keys in the order GLib iterates a hash table they were inserted into in this order. */
export function ghashKeyOrder(keys: readonly string[]): string[] {
  const table = new GHashTableModel();
  for (const key of keys) table.insert(key);
  return table.keys();
}
