//! The bytes zkbench writes, and the check that a read returned bytes written for its key.

/// Payload for `key`: `KKKKKKKK:SSSSSSSSSSSS:` then `x` padding, cut to `size` bytes.
pub fn payload(key: usize, seq: u64, size: usize) -> Vec<u8> {
    let mut v = format!("{key:08}:{seq:012}:").into_bytes();
    v.resize(size.max(v.len()), b'x');
    v.truncate(size);
    v
}

/// Whether `data` has the right length and starts with `key`'s prefix.
pub fn payload_ok(data: &[u8], key: usize, size: usize) -> bool {
    let want = format!("{key:08}:");
    let n = want.len().min(size);
    data.len() == size && data[..n] == want.as_bytes()[..n]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_has_the_size_and_the_key() {
        let p = payload(7, 3, 100);
        assert_eq!(p.len(), 100);
        assert!(p.starts_with(b"00000007:000000000003:x"));
        assert!(payload_ok(&p, 7, 100));
        assert!(!payload_ok(&p, 8, 100));
        assert!(!payload_ok(&p[..99], 7, 100));
        assert!(payload_ok(&payload(7, 3, 4), 7, 4));
    }
}
