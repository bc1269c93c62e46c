/**
 * Reader errors are one line naming the file; text taken from a file or from
 * a library's message (JSON.parse quotes the input around the error) may hold
 * line breaks and other control characters, which are escaped here.
 *
 * @module
 */

const isControl = (code: number) => code < 0x20 || code === 0x7f || code === 0x2028 || code === 0x2029

/** `s` with control characters (line breaks among them) escaped as `\uXXXX`. */
export const oneLine = (s: string): string =>
  Array.from(s, (c) => {
    const code = c.charCodeAt(0)
    return isControl(code) ? `\\u${code.toString(16).padStart(4, "0")}` : c
  }).join("")

/** A string from a file, quoted and escaped. */
export const quote = (s: string): string => `"${oneLine(s.replace(/["\\]/g, "\\$&"))}"`
