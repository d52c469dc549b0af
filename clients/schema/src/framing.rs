//! The Confluent wire framing of a record's key or value: magic byte 0, the
//! schema id as a 4-byte big-endian integer, then (Protobuf only) the
//! message-index path as zig-zag varints (a count, then the indexes; the
//! path `[0]` is written as the single byte 0), then the payload.

/// The first byte of every framed record.
pub const MAGIC: u8 = 0;

/// Why bytes are not a Confluent-framed record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("record too short for the schema framing ({0} bytes)")]
    Short(usize),
    #[error("unknown magic byte {0}")]
    Magic(u8),
    #[error("bad Protobuf message indexes")]
    Indexes,
}

/// Frame `payload` written with schema `id` (and, for Protobuf, `indexes`).
pub fn frame(id: i32, indexes: Option<&[i32]>, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.push(MAGIC);
    out.extend_from_slice(&id.to_be_bytes());
    if let Some(ix) = indexes {
        if ix.is_empty() || ix == [0] {
            out.push(0);
        } else {
            put_zigzag(&mut out, ix.len() as i64);
            for i in ix {
                put_zigzag(&mut out, *i as i64);
            }
        }
    }
    out.extend_from_slice(payload);
    out
}

/// The schema id and the rest (message indexes still in it, for Protobuf).
pub fn unframe(bytes: &[u8]) -> Result<(i32, &[u8]), FrameError> {
    if bytes.len() < 5 {
        return Err(FrameError::Short(bytes.len()));
    }
    if bytes[0] != MAGIC {
        return Err(FrameError::Magic(bytes[0]));
    }
    let id = i32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    Ok((id, &bytes[5..]))
}

/// Split Protobuf message indexes off the front of `rest`.
pub fn read_indexes(rest: &[u8]) -> Result<(Vec<i32>, &[u8]), FrameError> {
    let (n, mut rest) = get_zigzag(rest)?;
    if n == 0 {
        return Ok((vec![0], rest));
    }
    if !(0..=64).contains(&n) {
        return Err(FrameError::Indexes);
    }
    let mut out = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let (v, r) = get_zigzag(rest)?;
        out.push(i32::try_from(v).map_err(|_| FrameError::Indexes)?);
        rest = r;
    }
    Ok((out, rest))
}

fn put_zigzag(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        if z < 0x80 {
            out.push(z as u8);
            return;
        }
        out.push((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
}

fn get_zigzag(b: &[u8]) -> Result<(i64, &[u8]), FrameError> {
    let mut z: u64 = 0;
    for (i, byte) in b.iter().enumerate().take(10) {
        z |= ((byte & 0x7f) as u64) << (7 * i);
        if byte & 0x80 == 0 {
            let v = ((z >> 1) as i64) ^ -((z & 1) as i64);
            return Ok((v, &b[i + 1..]));
        }
    }
    Err(FrameError::Indexes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let f = frame(258, None, b"abc");
        assert_eq!(f, [0, 0, 0, 1, 2, b'a', b'b', b'c']);
        assert_eq!(unframe(&f), Ok((258, &b"abc"[..])));
        let p = frame(7, Some(&[1, 2]), b"x");
        let (id, rest) = unframe(&p).unwrap();
        assert_eq!(id, 7);
        assert_eq!(read_indexes(rest), Ok((vec![1, 2], &b"x"[..])));
        let z = frame(7, Some(&[0]), b"y");
        assert_eq!(z[5], 0);
        assert_eq!(read_indexes(&z[5..]), Ok((vec![0], &b"y"[..])));
        assert!(unframe(b"\x01abcd").is_err());
        assert!(unframe(b"\x00ab").is_err());
    }
}
