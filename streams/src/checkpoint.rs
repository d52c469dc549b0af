//! The checkpoint file of a task (`<task dir>/.checkpoint`): for each changelog partition,
//! the offset up to which the local stores hold its records. Written (temp file + rename)
//! after every commit has been applied to the stores; a restore starts there instead of at
//! the beginning of the changelog. A missing or unreadable file means "restore from scratch".

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

pub(crate) type Offsets = BTreeMap<(String, i32), i64>;

pub(crate) fn read(path: &Path) -> Offsets {
    let mut out = Offsets::new();
    let Ok(text) = std::fs::read_to_string(path) else {
        return out;
    };
    let mut lines = text.lines();
    if lines.next() != Some("0") {
        return Offsets::new(); // unknown version: not trusted
    }
    for line in lines {
        let parts: Vec<&str> = line.split(' ').collect();
        if let [topic, p, o] = parts[..] {
            if let (Ok(p), Ok(o)) = (p.parse::<i32>(), o.parse::<i64>()) {
                out.insert((topic.to_string(), p), o);
                continue;
            }
        }
        return Offsets::new(); // a torn or foreign file: restore from scratch
    }
    out
}

pub(crate) fn write(path: &Path, offsets: &Offsets) -> Result<()> {
    let io = |e| Error::Io {
        path: path.display().to_string(),
        source: e,
    };
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    let mut text = String::from("0\n");
    for ((t, p), o) in offsets {
        text.push_str(&format!("{t} {p} {o}\n"));
    }
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip_and_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(".checkpoint");
        let mut o = super::Offsets::new();
        o.insert(("app-s-changelog".into(), 3), 42);
        super::write(&p, &o).unwrap();
        assert_eq!(super::read(&p), o);
        std::fs::write(&p, "0\nbroken line\n").unwrap();
        assert!(super::read(&p).is_empty());
        std::fs::write(&p, "7\nx 1 2\n").unwrap();
        assert!(super::read(&p).is_empty());
    }
}
