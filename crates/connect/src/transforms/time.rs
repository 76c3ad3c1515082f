//! UTC date arithmetic and the subset of Java's `SimpleDateFormat` patterns the
//! timestamp transforms accept: `yyyy yy MM dd HH mm ss SSS`, quoted literals (`'T'`)
//! and any other punctuation as itself.

use gregor_connect_api::ConnectError;

const DAY_MS: i64 = 86_400_000;

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's algorithm.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) to days since 1970-01-01.
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

enum Tok {
    Field(char, usize),
    Lit(String),
}

fn tokenize(pattern: &str) -> Vec<Tok> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            let mut lit = String::new();
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                lit.push(chars[i]);
                i += 1;
            }
            i += 1;
            out.push(Tok::Lit(if lit.is_empty() { "'".into() } else { lit }));
        } else if matches!(c, 'y' | 'M' | 'd' | 'H' | 'm' | 's' | 'S') {
            let mut n = 0;
            while i < chars.len() && chars[i] == c {
                n += 1;
                i += 1;
            }
            out.push(Tok::Field(c, n));
        } else {
            out.push(Tok::Lit(c.to_string()));
            i += 1;
        }
    }
    out
}

/// Formats milliseconds since the epoch, in UTC.
pub(crate) fn format(ms: i64, pattern: &str) -> String {
    let days = ms.div_euclid(DAY_MS);
    let in_day = ms.rem_euclid(DAY_MS);
    let (y, mo, d) = civil_from_days(days);
    let mut out = String::new();
    for t in tokenize(pattern) {
        match t {
            Tok::Lit(s) => out.push_str(&s),
            Tok::Field(c, n) => {
                let v = match c {
                    'y' if n == 2 => y.rem_euclid(100),
                    'y' => y,
                    'M' => i64::from(mo),
                    'd' => i64::from(d),
                    'H' => in_day / 3_600_000,
                    'm' => in_day / 60_000 % 60,
                    's' => in_day / 1000 % 60,
                    _ => in_day % 1000,
                };
                out.push_str(&format!("{v:0n$}"));
            }
        }
    }
    out
}

/// Parses text written in `pattern` (UTC) to milliseconds since the epoch.
pub(crate) fn parse(text: &str, pattern: &str) -> Result<i64, ConnectError> {
    let bad = || {
        ConnectError::Data(format!(
            "Could not parse timestamp: value ({text}) does not match pattern ({pattern})"
        ))
    };
    let (mut y, mut mo, mut d, mut h, mut mi, mut s, mut ms) =
        (1970i64, 1u32, 1u32, 0i64, 0i64, 0i64, 0i64);
    let mut rest = text;
    for t in tokenize(pattern) {
        match t {
            Tok::Lit(l) => rest = rest.strip_prefix(l.as_str()).ok_or_else(bad)?,
            Tok::Field(c, n) => {
                let len = rest.chars().take_while(char::is_ascii_digit).count();
                let take = if c == 'y' && n != 2 { len } else { n.min(len) };
                if take == 0 {
                    return Err(bad());
                }
                let v: i64 = rest[..take].parse().map_err(|_| bad())?;
                rest = &rest[take..];
                match c {
                    'y' if n == 2 => y = 2000 + v,
                    'y' => y = v,
                    'M' => mo = u32::try_from(v).map_err(|_| bad())?,
                    'd' => d = u32::try_from(v).map_err(|_| bad())?,
                    'H' => h = v,
                    'm' => mi = v,
                    's' => s = v,
                    _ => ms = v,
                }
            }
        }
    }
    if !rest.is_empty() || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    Ok(days_from_civil(y, mo, d) * DAY_MS + ((h * 60 + mi) * 60 + s) * 1000 + ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_utc() {
        // 2024-02-29T13:45:06.789Z
        let ms = 1_709_214_306_789;
        assert_eq!(
            format(ms, "yyyy-MM-dd'T'HH:mm:ss.SSS"),
            "2024-02-29T13:45:06.789"
        );
        assert_eq!(format(ms, "yyyyMMdd"), "20240229");
        assert_eq!(
            parse("2024-02-29T13:45:06.789", "yyyy-MM-dd'T'HH:mm:ss.SSS").unwrap(),
            ms
        );
        assert_eq!(format(0, "yyyy-MM-dd"), "1970-01-01");
        assert!(parse("2024-13-01", "yyyy-MM-dd").is_err());
    }
}
