/** Bits per page. Small pages keep scattered extents cheap; runs of full pages are stored as intervals. */
export const PAGE_BITS = 4096;
export const PAGE_WORDS = PAGE_BITS / 32;

/** The words of one page of a bitmap (PAGE_BITS bits). */
export type Page = Uint32Array;

/** Stands for a page whose every bit is set; shared and never written. */
export const FULL: Page = new Uint32Array(0);

/** Receives a span of pages [index, end): one mixed page with its words, or a run of full pages (words null). Returning true stops the walk. */
export type SpanVisitor = (index: number, end: number, words: Page | null) => boolean | void;

/**
 * The pages of a bitmap: pages with some bits set by index, and runs of full
 * pages as sorted page intervals, so that a dense bitmap costs one entry per
 * run and not one per page. Clean pages are absent.
 */
export class PageTable {
  /** Pages with some but not all bits set. */
  private mixed = new Map<number, Page>();
  /** Whether `mixed` iterates in ascending index order, as it does while pages arrive in order. */
  private mixedAscending = true;
  private highestMixed = -1;
  /** Runs of full pages [starts[i], ends[i]): ascending, disjoint, never touching. */
  private starts: number[] = [];
  private ends: number[] = [];

  /** FULL, the page's words, or undefined for a clean page. */
  get(index: number): Page | undefined {
    return this.mixed.get(index) ?? (this.inFullRun(index) ? FULL : undefined);
  }

  /** Stores one page: FULL, words with some bits set, or undefined (clean). */
  set(index: number, page: Page | undefined): void {
    if (page === FULL) {
      this.mixed.delete(index);
      this.addRun(index, index + 1);
      return;
    }
    this.removeRun(index, index + 1);
    if (page === undefined) {
      this.mixed.delete(index);
      return;
    }
    const size = this.mixed.size;
    this.mixed.set(index, page);
    if (this.mixed.size === size) return;
    if (index < this.highestMixed) this.mixedAscending = false;
    else this.highestMixed = index;
  }

  /** Makes pages [from, to) all full or all clean. */
  fill(from: number, to: number, full: boolean): void {
    if (to <= from) return;
    for (const index of this.mixedIndexesIn(from, to)) this.mixed.delete(index);
    if (full) this.addRun(from, to);
    else this.removeRun(from, to);
  }

  /** How many entries the table holds: what a copy of it costs. */
  get entries(): number {
    return this.mixed.size + this.starts.length;
  }

  /** An independent copy: words are copied, FULL stays shared. */
  clone(): PageTable {
    const copy = new PageTable();
    // One allocation for all the words (an allocation per page cost more than the copying);
    // the block lives as long as any of its pages does.
    const words = new Uint32Array(this.mixed.size * PAGE_WORDS);
    let at = 0;
    for (const [index, page] of this.mixed) {
      const pageCopy = words.subarray(at, at + PAGE_WORDS);
      pageCopy.set(page);
      copy.mixed.set(index, pageCopy);
      at += PAGE_WORDS;
    }
    copy.mixedAscending = this.mixedAscending;
    copy.highestMixed = this.highestMixed;
    copy.starts = [...this.starts];
    copy.ends = [...this.ends];
    return copy;
  }

  /**
   * Visits the stored spans overlapping pages [from, to) in ascending order, full runs
   * clipped to the range. `visit` must not change the table.
   */
  forEachSpan(from: number, to: number, visit: SpanVisitor): void {
    if (to <= from) return;
    let run = this.firstRunEndingAfter(from);
    // Mixed pages by lookup when the range is narrower than the map, else by walking it in order.
    if (to - from <= this.mixed.size) {
      for (let index = from; index < to; index++) {
        const words = this.mixed.get(index);
        if (words === undefined) continue;
        run = this.visitRunsBefore(index, run, from, visit);
        if (run < 0 || visit(index, index + 1, words)) return;
      }
    } else {
      this.sortMixed();
      for (const [index, words] of this.mixed) {
        if (index < from) continue;
        if (index >= to) break;
        run = this.visitRunsBefore(index, run, from, visit);
        if (run < 0 || visit(index, index + 1, words)) return;
      }
    }
    for (; run < this.starts.length && this.starts[run]! < to; run++) {
      if (visit(Math.max(this.starts[run]!, from), Math.min(this.ends[run]!, to), null)) return;
    }
  }

  /** Visits the full runs from position `run` that start before page `index`; the next run's position, or -1 once `visit` stopped. */
  private visitRunsBefore(index: number, run: number, from: number, visit: SpanVisitor): number {
    for (; run < this.starts.length && this.starts[run]! < index; run++) {
      if (visit(Math.max(this.starts[run]!, from), this.ends[run]!, null)) return -1;
    }
    return run;
  }

  /** Indexes of the mixed pages in [from, to), ascending. */
  private mixedIndexesIn(from: number, to: number): number[] {
    const indexes: number[] = [];
    if (to - from <= this.mixed.size) {
      for (let index = from; index < to; index++) if (this.mixed.has(index)) indexes.push(index);
      return indexes;
    }
    this.sortMixed();
    for (const index of this.mixed.keys()) if (index >= from && index < to) indexes.push(index);
    return indexes;
  }

  /** Reorders the mixed pages once when they arrived out of order. */
  private sortMixed(): void {
    if (this.mixedAscending) return;
    const entries = [...this.mixed].sort((a, b) => a[0] - b[0]);
    this.mixed = new Map(entries);
    this.mixedAscending = true;
    this.highestMixed = entries.length > 0 ? entries[entries.length - 1]![0] : -1;
  }

  private inFullRun(index: number): boolean {
    const run = this.firstRunEndingAfter(index);
    return run < this.starts.length && this.starts[run]! <= index;
  }

  /** Position of the first run whose end is above `index` (binary search). */
  private firstRunEndingAfter(index: number): number {
    let low = 0;
    let high = this.ends.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.ends[middle]! > index) high = middle;
      else low = middle + 1;
    }
    return low;
  }

  /** Position of the first run starting above `index`. */
  private firstRunStartingAfter(index: number): number {
    let low = 0;
    let high = this.starts.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.starts[middle]! > index) high = middle;
      else low = middle + 1;
    }
    return low;
  }

  private addRun(from: number, to: number): void {
    const count = this.starts.length;
    if (count === 0 || this.ends[count - 1]! < from) {
      this.starts.push(from);
      this.ends.push(to);
      return;
    }
    // Runs touching [from, to) (ending at or after `from`, starting at or before `to`) melt into one.
    const first = this.firstRunEndingAfter(from - 1);
    const end = this.firstRunStartingAfter(to);
    if (first === end) {
      this.starts.splice(first, 0, from);
      this.ends.splice(first, 0, to);
      return;
    }
    const start = Math.min(from, this.starts[first]!);
    const stop = Math.max(to, this.ends[end - 1]!);
    this.starts.splice(first, end - first, start);
    this.ends.splice(first, end - first, stop);
  }

  private removeRun(from: number, to: number): void {
    const first = this.firstRunEndingAfter(from);
    if (first === this.starts.length || this.starts[first]! >= to) return;
    const end = this.firstRunStartingAfter(to - 1);
    const keptStarts: number[] = [];
    const keptEnds: number[] = [];
    if (this.starts[first]! < from) {
      keptStarts.push(this.starts[first]!);
      keptEnds.push(from);
    }
    if (this.ends[end - 1]! > to) {
      keptStarts.push(to);
      keptEnds.push(this.ends[end - 1]!);
    }
    this.starts.splice(first, end - first, ...keptStarts);
    this.ends.splice(first, end - first, ...keptEnds);
  }
}
