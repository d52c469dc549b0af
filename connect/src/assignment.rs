//! Which worker runs what. Connectors, then their tasks, are dealt round-robin over
//! the live workers, everything sorted, so every worker computes the same answer
//! from the same membership and records, with no leader to elect (the shape of
//! Kafka Connect's eager round-robin assignor: 4 tasks on 2 workers → 2 each).

use std::collections::BTreeMap;

/// A connector (`None`) or one of its tasks.
pub type Unit = (String, Option<i32>);

/// Each unit → its worker. `connectors` maps a name to its number of tasks; with no
/// workers nothing is assigned.
pub fn assign(workers: &[String], connectors: &BTreeMap<String, usize>) -> BTreeMap<Unit, String> {
    let mut workers: Vec<&String> = workers.iter().collect();
    workers.sort();
    workers.dedup();
    let mut out = BTreeMap::new();
    if workers.is_empty() {
        return out;
    }
    let mut next = workers.iter().cycle();
    let units = connectors.keys().map(|c| (c.clone(), None)).chain(
        connectors
            .iter()
            .flat_map(|(c, n)| (0..*n as i32).map(move |i| (c.clone(), Some(i)))),
    );
    for u in units {
        if let Some(w) = next.next() {
            out.insert(u, w.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owners(out: &BTreeMap<Unit, String>, w: &str) -> usize {
        out.iter()
            .filter(|((_, t), o)| t.is_some() && o.as_str() == w)
            .count()
    }

    #[test]
    fn four_tasks_on_two_workers_are_two_each_and_all_on_a_survivor() {
        let c: BTreeMap<String, usize> = [("sink".to_string(), 4)].into();
        let two = assign(&["w2".into(), "w1".into()], &c);
        assert_eq!(two.len(), 5);
        assert_eq!((owners(&two, "w1"), owners(&two, "w2")), (2, 2));
        let one = assign(&["w2".into()], &c);
        assert_eq!(owners(&one, "w2"), 4);
        assert!(assign(&[], &c).is_empty());
    }

    #[test]
    fn every_worker_computes_the_same_answer_whatever_the_order_it_sees() {
        let c: BTreeMap<String, usize> = [
            ("a".to_string(), 3),
            ("b".to_string(), 1),
            ("c".to_string(), 0),
        ]
        .into();
        let x = assign(&["w1".into(), "w3".into(), "w2".into()], &c);
        let y = assign(&["w3".into(), "w2".into(), "w1".into(), "w2".into()], &c);
        assert_eq!(x, y);
        // 3 connectors + 4 tasks over 3 workers: no worker has more than one task
        // over another.
        let counts: Vec<usize> = ["w1", "w2", "w3"].iter().map(|w| owners(&x, w)).collect();
        assert!(
            counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1,
            "{counts:?}"
        );
    }
}
