//! Connect's logical types as their schemas name them (`Decimal`, `Timestamp`,
//! `Date`, `Time`), and the one calendar that turns epoch days into civil
//! dates and back (Howard Hinnant's algorithms): `Date` is epoch days, and the
//! JDBC connectors and the transforms both read and write dates through it.
//! A `Decimal` is the big-endian two's complement of its unscaled value
//! (`decimal_text` and `unscaled_bytes` convert it from and to its digits).

pub const DECIMAL: &str = "org.apache.kafka.connect.data.Decimal";
pub const TIMESTAMP: &str = "org.apache.kafka.connect.data.Timestamp";
pub const DATE: &str = "org.apache.kafka.connect.data.Date";
pub const TIME: &str = "org.apache.kafka.connect.data.Time";

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) of days since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Big-endian two's-complement unscaled integer + scale → decimal text.
pub fn decimal_text(bytes: &[u8], scale: i32) -> Result<String, String> {
    if bytes.len() > 16 {
        return Err("decimal wider than 128 bits".into());
    }
    let mut n: i128 = if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        -1
    } else {
        0
    };
    for b in bytes {
        n = (n << 8) | *b as i128;
    }
    let neg = n < 0;
    let digits = n.unsigned_abs().to_string();
    let mut s = String::with_capacity(digits.len() + scale.unsigned_abs() as usize + 3);
    if neg {
        s.push('-');
    }
    if scale <= 0 {
        s.push_str(&digits);
        s.extend(std::iter::repeat_n('0', (-scale) as usize));
    } else if digits.len() <= scale as usize {
        s.push_str("0.");
        s.extend(std::iter::repeat_n('0', scale as usize - digits.len()));
        s.push_str(&digits);
    } else {
        let (a, b) = digits.split_at(digits.len() - scale as usize);
        s.push_str(a);
        s.push('.');
        s.push_str(b);
    }
    Ok(s)
}

/// Decimal text → minimal big-endian two's-complement unscaled integer at `scale`.
pub fn unscaled_bytes(text: &str, scale: i32) -> Result<Vec<u8>, String> {
    let t = text.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    let scale = scale.max(0) as usize;
    let mut frac = frac.to_string();
    if frac.len() > scale {
        frac.truncate(scale);
    }
    while frac.len() < scale {
        frac.push('0');
    }
    let digits = format!("{int}{frac}");
    let mut n: i128 = if digits.is_empty() {
        0
    } else {
        digits
            .parse::<i128>()
            .map_err(|_| format!("'{text}' is not a decimal"))?
    };
    if neg {
        n = -n;
    }
    let full = n.to_be_bytes();
    // Drop leading bytes that only repeat the sign.
    let mut start = 0;
    while start < 15 {
        let (b, next) = (full[start], full[start + 1]);
        if (b == 0 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    Ok(full[start..].to_vec())
}
