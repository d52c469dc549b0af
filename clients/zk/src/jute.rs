//! Jute, ZooKeeper's serialization: big-endian ints and longs, one-byte
//! booleans, and length-prefixed strings, buffers and vectors (length −1 means
//! null).
//!
//! Decoding never trusts a length: every length is checked against the bytes
//! left in the frame before anything is allocated, so a lying frame costs at
//! most its own size (the frame itself is capped by `jute.maxbuffer`).

use bytes::{BufMut, Bytes, BytesMut};

/// Why a frame could not be decoded; the connection that sent it is closed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JuteError {
    #[error("frame truncated: needed {needed} more bytes at offset {offset}")]
    Truncated { offset: usize, needed: usize },
    #[error("length {len} at offset {offset} exceeds the {left} bytes left in the frame")]
    BadLength {
        offset: usize,
        len: i32,
        left: usize,
    },
    #[error("string at offset {0} is not UTF-8")]
    Utf8(usize),
}

/// A cursor over one received frame.
pub struct Reader {
    buf: Bytes,
    pos: usize,
}

impl Reader {
    /// Reads from `buf`, which is one whole frame without its length prefix.
    pub fn new(buf: Bytes) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes not read yet: trailing optional fields (ConnectRequest's readOnly) test this.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<Bytes, JuteError> {
        if self.remaining() < n {
            return Err(JuteError::Truncated {
                offset: self.pos,
                needed: n - self.remaining(),
            });
        }
        let out = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], JuteError> {
        let b = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(&b);
        Ok(out)
    }

    pub fn i32(&mut self) -> Result<i32, JuteError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    pub fn i64(&mut self) -> Result<i64, JuteError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    pub fn bool(&mut self) -> Result<bool, JuteError> {
        Ok(self.array::<1>()?[0] != 0)
    }

    /// A length prefix: `None` for null (−1), else checked against what is left
    /// (each element needs at least `min_elem` bytes).
    fn len(&mut self, min_elem: usize) -> Result<Option<usize>, JuteError> {
        let offset = self.pos;
        let len = self.i32()?;
        if len == -1 {
            return Ok(None);
        }
        let left = self.remaining();
        if len < 0 || (len as usize).saturating_mul(min_elem) > left {
            return Err(JuteError::BadLength { offset, len, left });
        }
        Ok(Some(len as usize))
    }

    /// A jute `buffer`; null stays distinguishable from empty (zkCli prints "null").
    pub fn buffer(&mut self) -> Result<Option<Bytes>, JuteError> {
        match self.len(1)? {
            None => Ok(None),
            Some(n) => self.take(n).map(Some),
        }
    }

    /// A jute `ustring`; null reads as the empty string.
    pub fn string(&mut self) -> Result<String, JuteError> {
        let offset = self.pos;
        match self.buffer()? {
            None => Ok(String::new()),
            Some(b) => String::from_utf8(b.to_vec()).map_err(|_| JuteError::Utf8(offset)),
        }
    }

    /// A jute `vector`; null reads as empty. Each element takes ≥ 1 byte, which
    /// bounds the allocation by the frame size.
    pub fn vec<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<T, JuteError>,
    ) -> Result<Vec<T>, JuteError> {
        let n = self.len(1)?.unwrap_or(0);
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(item(self)?);
        }
        Ok(out)
    }
}

/// Encoding helpers on a `BytesMut` (frames are built in place, length patched last).
pub trait Writer {
    fn put_bool_j(&mut self, v: bool);
    fn put_buffer(&mut self, v: Option<&[u8]>);
    fn put_string(&mut self, v: &str);
    fn put_strings<S: AsRef<str>>(&mut self, v: &[S]);
}

impl Writer for BytesMut {
    fn put_bool_j(&mut self, v: bool) {
        self.put_u8(v as u8);
    }
    fn put_buffer(&mut self, v: Option<&[u8]>) {
        match v {
            None => self.put_i32(-1),
            Some(b) => {
                self.put_i32(b.len() as i32);
                self.put_slice(b);
            }
        }
    }
    fn put_string(&mut self, v: &str) {
        self.put_buffer(Some(v.as_bytes()));
    }
    fn put_strings<S: AsRef<str>>(&mut self, v: &[S]) {
        self.put_i32(v.len() as i32);
        for s in v {
            self.put_string(s.as_ref());
        }
    }
}

/// A jute record: something that reads and writes itself field by field.
pub trait Record: Sized {
    fn read(r: &mut Reader) -> Result<Self, JuteError>;
    fn write(&self, w: &mut BytesMut);
}

/// An empty body: requests and replies that carry nothing after their header.
impl Record for () {
    fn read(_: &mut Reader) -> Result<Self, JuteError> {
        Ok(())
    }
    fn write(&self, _: &mut BytesMut) {}
}

/// Records that are one jute primitive: the reader method and how to write it.
macro_rules! primitive_records {
    ($($t:ty => $read:ident, |$w:ident, $v:ident| $write:expr;)*) => {$(
        impl Record for $t {
            fn read(r: &mut Reader) -> Result<Self, JuteError> {
                r.$read()
            }
            fn write(&self, $w: &mut BytesMut) {
                let $v = self;
                $write
            }
        }
    )*};
}

primitive_records! {
    i32 => i32, |w, v| w.put_i32(*v);
    i64 => i64, |w, v| w.put_i64(*v);
    bool => bool, |w, v| w.put_bool_j(*v);
    String => string, |w, v| w.put_string(v);
    Option<Bytes> => buffer, |w, v| w.put_buffer(v.as_deref());
}

impl<T: Record> Record for Vec<T> {
    fn read(r: &mut Reader) -> Result<Self, JuteError> {
        r.vec(T::read)
    }
    fn write(&self, w: &mut BytesMut) {
        w.put_i32(self.len() as i32);
        for item in self {
            item.write(w);
        }
    }
}

/// Declares a jute record struct whose fields are read and written in order.
#[macro_export]
macro_rules! jute_record {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $f:ident : $t:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
        pub struct $name { $($(#[$fm])* pub $f: $t),* }
        impl $crate::jute::Record for $name {
            fn read(_r: &mut $crate::jute::Reader) -> Result<Self, $crate::jute::JuteError> {
                Ok(Self { $($f: $crate::jute::Record::read(_r)?),* })
            }
            fn write(&self, _w: &mut bytes::BytesMut) {
                $($crate::jute::Record::write(&self.$f, _w);)*
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_primitives() {
        let mut w = BytesMut::new();
        w.put_i32(-7);
        w.put_i64(1 << 40);
        w.put_bool_j(true);
        w.put_string("/a/b");
        w.put_buffer(None);
        w.put_strings(&["x", "yz"]);
        let mut r = Reader::new(w.freeze());
        assert_eq!(r.i32().unwrap(), -7);
        assert_eq!(r.i64().unwrap(), 1 << 40);
        assert!(r.bool().unwrap());
        assert_eq!(r.string().unwrap(), "/a/b");
        assert_eq!(r.buffer().unwrap(), None);
        assert_eq!(r.vec(Reader::string).unwrap(), vec!["x", "yz"]);
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn lying_lengths_are_refused_before_allocation() {
        let mut w = BytesMut::new();
        w.put_i32(i32::MAX);
        assert!(matches!(
            Reader::new(w.freeze()).buffer(),
            Err(JuteError::BadLength { .. })
        ));
        let mut w = BytesMut::new();
        w.put_i32(-5);
        assert!(Reader::new(w.freeze()).vec(Reader::i32).is_err());
        let mut w = BytesMut::new();
        w.put_i32(1_000_000);
        w.put_i32(1);
        assert!(Reader::new(w.freeze()).vec(Reader::i32).is_err());
        assert!(Reader::new(Bytes::from_static(&[0, 0])).i32().is_err());
    }
}
