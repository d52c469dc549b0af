//! A line diff of two texts (two versions of a schema, shown side by side):
//! the longest common subsequence of their lines, so unchanged lines pair up
//! and the rest show as removed on the left or added on the right. Schemas
//! are small; past a bound the texts are shown whole, one against the other.

/// One row of a side-by-side diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Row<'a> {
    Same(&'a str),
    /// Only in the left text.
    Del(&'a str),
    /// Only in the right text.
    Add(&'a str),
}

/// Beyond this many line pairs the LCS table would cost too much memory.
const MAX_CELLS: usize = 4_000_000;

pub fn lines<'a>(a: &'a str, b: &'a str) -> Vec<Row<'a>> {
    let a: Vec<&str> = a.lines().collect();
    let b: Vec<&str> = b.lines().collect();
    if (a.len() + 1).saturating_mul(b.len() + 1) > MAX_CELLS {
        return a
            .iter()
            .copied()
            .map(Row::Del)
            .chain(b.iter().copied().map(Row::Add))
            .collect();
    }
    // lcs[i][j]: the common length of a[i..] and b[j..].
    let w = b.len() + 1;
    let mut lcs = vec![0u32; (a.len() + 1) * w];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i * w + j] = if a[i] == b[j] {
                lcs[(i + 1) * w + j + 1] + 1
            } else {
                lcs[(i + 1) * w + j].max(lcs[i * w + j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    while i < a.len() && j < b.len() {
        if a[i] == b[j] {
            out.push(Row::Same(a[i]));
            i += 1;
            j += 1;
        } else if lcs[(i + 1) * w + j] >= lcs[i * w + j + 1] {
            out.push(Row::Del(a[i]));
            i += 1;
        } else {
            out.push(Row::Add(b[j]));
            j += 1;
        }
    }
    out.extend(a[i..].iter().copied().map(Row::Del));
    out.extend(b[j..].iter().copied().map(Row::Add));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_common_lines() {
        let d = lines("a\nb\nc\n", "a\nx\nc\nd\n");
        assert_eq!(
            d,
            vec![
                Row::Same("a"),
                Row::Del("b"),
                Row::Add("x"),
                Row::Same("c"),
                Row::Add("d")
            ]
        );
        assert_eq!(lines("", "q"), vec![Row::Add("q")]);
        assert!(lines("same\n", "same\n")
            .iter()
            .all(|r| matches!(r, Row::Same(_))));
    }
}
