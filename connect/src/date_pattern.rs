//! Date patterns as Java writes them, the subset Connect configurations use:
//! SimpleDateFormat's (`TimestampConverter.format`, `TimestampRouter`'s
//! `timestamp.format`) and Joda's (the S3 sink's `path.format`, where `YYYY` is
//! the year): `yyyy`/`YYYY`, `yy`, `MM`, `dd`, `HH`, `mm`, `ss`, `SSS`, 'quoted
//! text' and any other non-letter as it is. One implementation, so a pattern
//! means the same in a transform and in an object name.

use crate::logical::{civil_from_days, days_from_civil};

/// The pattern letters [`format_ts`] knows.
const LETTERS: &str = "yYMdHmsS";

/// The first letter of `pattern` outside quotes that [`format_ts`] does not know
/// (a configuration error: Java would print something else there).
pub fn unknown_letter(pattern: &str) -> Option<char> {
    let mut quoted = false;
    pattern.chars().find(|&c| {
        if c == '\'' {
            quoted = !quoted;
        }
        !quoted && c.is_ascii_alphabetic() && !LETTERS.contains(c)
    })
}

/// `s` read with the same SimpleDateFormat subset as [`format_ts`], in UTC.
pub fn parse_ts(pattern: &str, s: &str) -> Option<i64> {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = s.chars().collect();
    let (mut y, mut mo, mut d) = (1970i64, 1i64, 1i64);
    let (mut h, mut mi, mut se, mut ms) = (0i64, 0i64, 0i64, 0i64);
    let (mut i, mut j) = (0, 0);
    while i < p.len() {
        let c = p[i];
        let mut n = 1;
        while i + n < p.len() && p[i + n] == c {
            n += 1;
        }
        if c == '\'' {
            let end = p[i + 1..]
                .iter()
                .position(|&x| x == '\'')
                .map_or(p.len(), |q| i + 1 + q);
            for &lit in &p[i + 1..end] {
                if t.get(j) != Some(&lit) {
                    return None;
                }
                j += 1;
            }
            i = end + 1;
            continue;
        }
        if matches!(c, 'y' | 'Y' | 'M' | 'd' | 'H' | 'm' | 's' | 'S') {
            let width = if n == 1 { 2 } else { n };
            let start = j;
            while j < t.len() && j - start < width && t[j].is_ascii_digit() {
                j += 1;
            }
            let num: i64 = t[start..j].iter().collect::<String>().parse().ok()?;
            match c {
                'y' | 'Y' if n == 2 => y = 2000 + num,
                'y' | 'Y' => y = num,
                'M' => mo = num,
                'd' => d = num,
                'H' => h = num,
                'm' => mi = num,
                's' => se = num,
                _ => ms = num,
            }
        } else {
            for _ in 0..n {
                if t.get(j) != Some(&c) {
                    return None;
                }
                j += 1;
            }
        }
        i += n;
    }
    if j != t.len()
        || !(1..=12).contains(&mo)
        || !(1..=31).contains(&d)
        || h > 23
        || mi > 59
        || se > 60
    {
        return None;
    }
    Some(((days_from_civil(y, mo as u32, d as u32) * 24 + h) * 60 + mi) * 60_000 + se * 1000 + ms)
}

/// `ms` (UTC) in a date pattern (module doc); letters it does not know are
/// copied as they are ([`unknown_letter`] finds them first where that matters).
pub fn format_ts(pattern: &str, ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let mut out = String::new();
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let mut n = 1;
        while i + n < chars.len() && chars[i + n] == c {
            n += 1;
        }
        match c {
            'y' | 'Y' if n == 2 => out.push_str(&format!("{:02}", y.rem_euclid(100))),
            'y' | 'Y' => out.push_str(&format!("{y:04}")),
            'M' => out.push_str(&format!("{m:02}")),
            'd' => out.push_str(&format!("{d:02}")),
            'H' => out.push_str(&format!("{:02}", rem / 3600)),
            'm' => out.push_str(&format!("{:02}", rem % 3600 / 60)),
            's' => out.push_str(&format!("{:02}", rem % 60)),
            'S' => out.push_str(&format!("{:03}", ms.rem_euclid(1000))),
            '\'' => {
                // Quoted literal up to the next quote.
                let end = chars[i + 1..]
                    .iter()
                    .position(|&x| x == '\'')
                    .map_or(chars.len(), |p| i + 1 + p);
                out.extend(&chars[i + 1..end]);
                i = end + 1;
                continue;
            }
            _ => out.extend(std::iter::repeat_n(c, n)),
        }
        i += n;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joda_and_simpledateformat_years_and_literals() {
        // 2024-02-29T13:05:09.042Z
        let ms = 1_709_211_909_042;
        assert_eq!(
            format_ts("'year'=YYYY/'month'=MM/'day'=dd/'hour'=HH", ms),
            "year=2024/month=02/day=29/hour=13"
        );
        assert_eq!(format_ts("yyyyMMdd-HHmmss.SSS", ms), "20240229-130509.042");
        assert_eq!(format_ts("yy", ms), "24");
        assert_eq!(
            parse_ts("YYYY-MM-dd HH:mm:ss", "2024-02-29 13:05:09"),
            Some(ms - 42)
        );
        assert_eq!(format_ts("yyyy-MM-dd", -1), "1969-12-31");
    }

    #[test]
    fn unknown_letters_outside_quotes() {
        assert_eq!(unknown_letter("'year'=YYYY/'week'=ww"), Some('w'));
        assert_eq!(unknown_letter("'year'=YYYY/'day'=dd"), None);
        assert_eq!(unknown_letter("EEE"), Some('E'));
    }
}
