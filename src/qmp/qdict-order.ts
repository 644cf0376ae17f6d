/**
 * QEMU stores JSON objects in a QDict: a 512-bucket hash table whose buckets are
 * walked in index order, each bucket newest-first. Every object QEMU prints, and
 * every object it inspects member by member, follows that order, so reproducing
 * it is what makes our replies byte-identical.
 */
const BUCKETS = 512;

function qdictHash(key: string): number {
  const bytes = Buffer.from(key, 'utf8');
  let value = Math.imul(0x238f13af, bytes.length) >>> 0;
  for (let i = 0; i < bytes.length; i++) {
    value = (value + ((bytes[i]! << ((i * 5) % 24)) >>> 0)) >>> 0;
  }
  return (Math.imul(1103515243, value) + 12345) >>> 0;
}

const bucketCache = new Map<string, number>();

export function qdictBucket(key: string): number {
  let bucket = bucketCache.get(key);
  if (bucket === undefined) {
    bucket = qdictHash(key) % BUCKETS;
    if (bucketCache.size < 10_000) bucketCache.set(key, bucket);
  }
  return bucket;
}

/** Keys in the order QEMU iterates a QDict built by inserting them in the given order. */
export function qdictKeyOrder(keys: readonly string[]): string[] {
  if (keys.length < 2) return [...keys];
  return keys
    .map((key, insertedAt) => ({ key, insertedAt, bucket: qdictBucket(key) }))
    .sort((a, b) => a.bucket - b.bucket || b.insertedAt - a.insertedAt)
    .map((entry) => entry.key);
}
