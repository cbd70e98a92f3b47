/**
 * The one HTTP-date parser of the project (RFC 9110 §5.6.7): every Date, Expires,
 * Last-Modified, If-Modified-Since, If-Unmodified-Since and If-Range goes through it.
 */

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec']
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})'
// §5.6.7: IMF-fixdate, obsolete RFC 850 and ANSI C asctime() formats; names matched case-insensitively.
const IMF_FIXDATE = new RegExp(`^(?:mon|tue|wed|thu|fri|sat|sun), (\\d{2}) ([a-z]{3}) (\\d{4}) ${TIME} GMT$`, 'i')
const RFC850_DATE = new RegExp(`^(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday), (\\d{2})-([a-z]{3})-(\\d{2}) ${TIME} GMT$`, 'i')
const ASCTIME_DATE = new RegExp(`^(?:mon|tue|wed|thu|fri|sat|sun) ([a-z]{3}) (\\d{2}| \\d) ${TIME} (\\d{4})$`, 'i')

function utc (year: number, monthName: string, day: number, hour: number, minute: number, second: number): number | undefined {
  const month = MONTHS.indexOf(monthName.toLowerCase())
  if (month < 0 || hour > 23 || minute > 59 || second > 60) return undefined // 60: leap second (§5.6.7)
  const date = new Date(0)
  date.setUTCFullYear(year, month, day) // setUTCFullYear, unlike Date.UTC, keeps years 0-99 literal
  // Reject days that roll over into another month (e.g. 31 Feb, day 00).
  if (date.getUTCMonth() !== month || date.getUTCDate() !== day) return undefined
  return date.getTime() + ((hour * 60 + minute) * 60 + second) * 1000
}

/**
 * Parses an HTTP-date (§5.6.7) into epoch milliseconds; undefined when invalid. Strict on shape,
 * unlike Date.parse, which accepts arbitrary strings and reads asctime as local time.
 * rfc850 two-digit years more than 50 years in the future mean the previous century (§5.6.7).
 */
export function parseHttpDate (value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined) return undefined
  const text = value.trim()
  let m = IMF_FIXDATE.exec(text)
  if (m !== null) return utc(Number(m[3]), m[2], Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6]))
  m = RFC850_DATE.exec(text)
  if (m !== null) {
    const thisYear = new Date(now).getUTCFullYear()
    let year = Math.floor(thisYear / 100) * 100 + Number(m[3])
    if (year > thisYear + 50) year -= 100
    else if (year + 100 <= thisYear + 50) year += 100
    return utc(year, m[2], Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6]))
  }
  m = ASCTIME_DATE.exec(text)
  if (m !== null) return utc(Number(m[6]), m[1], Number(m[2].trim()), Number(m[3]), Number(m[4]), Number(m[5]))
  return undefined
}
