/**
 * C's isspace() in the "C" locale: the blanks QEMU's parsers skip. JavaScript's trim() and
 * `\s` also take Unicode spaces (U+00A0, U+FEFF, U+2028...), which QEMU reads as text.
 */
const LEADING = /^[ \t\n\v\f\r]+/;
const TRAILING = /[ \t\n\v\f\r]+$/;

export const C_BLANK = /[ \t\n\v\f\r]/;
export const C_BLANKS = /[ \t\n\v\f\r]+/;

export function trimStartC(text: string): string {
  return text.replace(LEADING, '');
}

export function trimC(text: string): string {
  return text.replace(LEADING, '').replace(TRAILING, '');
}

/** QEMU keeps strings in modified UTF-8: U+0000 is these two bytes, so a C string never ends early. */
export const MODIFIED_UTF8_NUL = Buffer.from([0xc0, 0x80]);
