/** Character scanning shared by the keyval and QemuOpts parsers. */

/** Reads a value up to the next lone ',' (',,' is an escaped ','); `next` is past that ','. */
export function readValue(text: string, start: number): { value: string; next: number } {
  let value = '';
  let position = start;
  while (position < text.length) {
    const char = text[position]!;
    if (char === ',') {
      if (text[position + 1] !== ',') return { value, next: position + 1 };
      position++;
    }
    value += char;
    position++;
  }
  return { value, next: position };
}

/** How many characters from `start` are not in `stops`. */
export function spanUntil(text: string, start: number, stops: string): number {
  let position = start;
  while (position < text.length && !stops.includes(text[position]!)) position++;
  return position - start;
}
