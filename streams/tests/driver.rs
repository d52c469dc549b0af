//! The library through its in-memory test driver: windows (tumbling, hopping), grace,
//! stream–table joins, repartitioning, aggregate/reduce, changelog records, dead letters.

use std::time::Duration;

use fjord_streams::{
    Consumed, Grouped, I64Serde, JsonSerde, Produced, StreamsBuilder, StringSerde,
    TopologyTestDriver, Windowed, WindowedSerde, Windows,
};

fn s(x: &str) -> String {
    x.to_string()
}

fn windowed_counts(windows: Windows) -> TopologyTestDriver {
    let b = StreamsBuilder::new();
    b.stream("in", Consumed::with(StringSerde, StringSerde))
        .group_by_key(Grouped::with("g", StringSerde, StringSerde))
        .windowed_by(windows)
        .count("counts")
        .to_stream()
        .to(
            "out",
            Produced::with(WindowedSerde::new(StringSerde), I64Serde),
        );
    TopologyTestDriver::new(b.build().unwrap(), "app").unwrap()
}

fn read_counts(d: &mut TopologyTestDriver) -> Vec<(String, i64, i64, i64)> {
    d.read("out", &WindowedSerde::new(StringSerde), &I64Serde)
        .unwrap()
        .into_iter()
        .map(|(w, c, _)| (w.key, w.start, w.end, c))
        .collect()
}

#[test]
fn tumbling_counts_per_key_and_window() {
    let mut d = windowed_counts(Windows::Tumbling {
        size: Duration::from_millis(100),
        grace: Duration::from_millis(1000),
    });
    for (k, ts) in [("a", 5), ("a", 50), ("b", 60), ("a", 120)] {
        d.pipe("in", &StringSerde, &StringSerde, &s(k), &s("v"), ts)
            .unwrap();
    }
    assert_eq!(
        read_counts(&mut d),
        vec![
            (s("a"), 0, 100, 1),
            (s("a"), 0, 100, 2),
            (s("b"), 0, 100, 1),
            (s("a"), 100, 200, 1)
        ]
    );
    // The changelog carries the final value of each window (and the stream time).
    let cl = d.changelog("counts");
    assert!(cl
        .iter()
        .any(|(_, v)| v.as_deref() == Some(&2i64.to_be_bytes()[..])));
    // No repartition: the key was not changed, so no internal topic is used.
    assert_eq!(d.stats().processed, 4);
}

#[test]
fn hopping_windows_count_a_record_in_each_window_it_falls_in() {
    let mut d = windowed_counts(Windows::Hopping {
        size: Duration::from_millis(100),
        advance: Duration::from_millis(50),
        grace: Duration::from_millis(1000),
    });
    d.pipe("in", &StringSerde, &StringSerde, &s("k"), &s("v"), 75)
        .unwrap();
    d.pipe("in", &StringSerde, &StringSerde, &s("k"), &s("v"), 120)
        .unwrap();
    assert_eq!(
        read_counts(&mut d),
        vec![
            (s("k"), 0, 100, 1),
            (s("k"), 50, 150, 1),
            (s("k"), 50, 150, 2),
            (s("k"), 100, 200, 1)
        ]
    );
}

#[test]
fn grace_late_within_counted_after_dropped() {
    let mut d = windowed_counts(Windows::Tumbling {
        size: Duration::from_millis(100),
        grace: Duration::from_millis(50),
    });
    d.pipe("in", &StringSerde, &StringSerde, &s("k"), &s("v"), 10)
        .unwrap();
    d.pipe("in", &StringSerde, &StringSerde, &s("k"), &s("v"), 149)
        .unwrap(); // stream time 149
    d.pipe("in", &StringSerde, &StringSerde, &s("k"), &s("v"), 20)
        .unwrap(); // end 100 + 50 > 149: counted
    assert_eq!(d.stats().late_dropped, 0);
    d.pipe("in", &StringSerde, &StringSerde, &s("k"), &s("v"), 150)
        .unwrap(); // stream time 150
    d.pipe("in", &StringSerde, &StringSerde, &s("k"), &s("v"), 30)
        .unwrap(); // 100 + 50 <= 150: dropped
    assert_eq!(d.stats().late_dropped, 1);
    assert_eq!(
        read_counts(&mut d),
        vec![
            (s("k"), 0, 100, 1),
            (s("k"), 100, 200, 1),
            (s("k"), 0, 100, 2),
            (s("k"), 100, 200, 2)
        ]
    );
}

#[test]
fn select_key_goes_through_the_repartition_topic() {
    let b = StreamsBuilder::new();
    b.stream("in", Consumed::with(StringSerde, StringSerde))
        .select_key(|_, v: &String| v.split(':').next().unwrap_or("").to_string())
        .group_by_key(Grouped::with("by-user", StringSerde, StringSerde))
        .count("per-user")
        .to_stream()
        .to("out", Produced::with(StringSerde, I64Serde));
    let topo = b.build().unwrap();
    assert_eq!(
        topo.repartition_topics("app"),
        vec![s("app-by-user-repartition")]
    );
    assert!(topo
        .source_topics("app")
        .contains(&s("app-by-user-repartition")));
    let mut d = TopologyTestDriver::new(topo, "app").unwrap();
    for v in ["u1:x", "u2:y", "u1:z"] {
        d.pipe("in", &StringSerde, &StringSerde, &s("ignored"), &s(v), 1)
            .unwrap();
    }
    let got = d.read("out", &StringSerde, &I64Serde).unwrap();
    assert_eq!(
        got.into_iter().map(|(k, c, _)| (k, c)).collect::<Vec<_>>(),
        vec![(s("u1"), 1), (s("u2"), 1), (s("u1"), 2)]
    );
    // 3 input records + 3 read back from the repartition topic.
    assert_eq!(d.stats().processed, 6);
    assert!(
        d.read_raw("app-by-user-repartition").is_empty(),
        "internal records are not outputs"
    );
}

#[test]
fn stream_table_inner_and_left_join() {
    let b = StreamsBuilder::new();
    let users = b.table(
        "users",
        Consumed::with(StringSerde, StringSerde),
        "users-store",
    );
    let clicks = b.stream("clicks", Consumed::with(StringSerde, StringSerde));
    clicks
        .join(&users, |_, c: &String, u: &String| format!("{c}@{u}"))
        .to("joined", Produced::with(StringSerde, StringSerde));
    clicks
        .left_join(&users, |_, c: &String, u: Option<&String>| {
            format!("{c}@{}", u.cloned().unwrap_or_else(|| s("?")))
        })
        .to("left", Produced::with(StringSerde, StringSerde));
    let mut d = TopologyTestDriver::new(b.build().unwrap(), "app").unwrap();
    d.pipe("clicks", &StringSerde, &StringSerde, &s("u1"), &s("c0"), 1)
        .unwrap();
    d.pipe("users", &StringSerde, &StringSerde, &s("u1"), &s("Ann"), 2)
        .unwrap();
    d.pipe("clicks", &StringSerde, &StringSerde, &s("u1"), &s("c1"), 3)
        .unwrap();
    d.pipe("users", &StringSerde, &StringSerde, &s("u1"), &s("Bea"), 4)
        .unwrap();
    d.pipe("clicks", &StringSerde, &StringSerde, &s("u1"), &s("c2"), 5)
        .unwrap();
    d.pipe_raw("users", Some(b"u1"), None, 6).unwrap(); // tombstone
    d.pipe("clicks", &StringSerde, &StringSerde, &s("u1"), &s("c3"), 7)
        .unwrap();
    let inner: Vec<String> = d
        .read("joined", &StringSerde, &StringSerde)
        .unwrap()
        .into_iter()
        .map(|x| x.1)
        .collect();
    assert_eq!(inner, vec![s("c1@Ann"), s("c2@Bea")]);
    let left: Vec<String> = d
        .read("left", &StringSerde, &StringSerde)
        .unwrap()
        .into_iter()
        .map(|x| x.1)
        .collect();
    assert_eq!(left, vec![s("c0@?"), s("c1@Ann"), s("c2@Bea"), s("c3@?")]);
    // The table's changelog: two values then a tombstone for u1.
    let cl = d.changelog("users-store");
    assert_eq!(cl.last(), Some(&(b"u1".to_vec(), None)));
}

#[test]
fn join_after_a_key_change_without_repartition_is_refused() {
    let b = StreamsBuilder::new();
    let t = b.table("t", Consumed::with(StringSerde, StringSerde), "t-store");
    b.stream("s", Consumed::with(StringSerde, StringSerde))
        .select_key(|_, v: &String| v.clone())
        .join(&t, |_, a: &String, b: &String| format!("{a}{b}"));
    drop(t);
    assert!(b.build().is_err());
}

#[test]
fn aggregate_reduce_filter_flat_map() {
    #[derive(Clone, serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Stat {
        n: i64,
        sum: i64,
    }
    let b = StreamsBuilder::new();
    let nums = b
        .stream("in", Consumed::with(StringSerde, StringSerde))
        .flat_map_values(|_, v: String| {
            v.split(',')
                .filter_map(|x| x.parse::<i64>().ok())
                .collect::<Vec<_>>()
        })
        .filter(|_, n| *n >= 0);
    let g = nums.group_by_key(Grouped::with("g", StringSerde, I64Serde));
    g.aggregate(
        || Stat { n: 0, sum: 0 },
        |_, v, a| Stat {
            n: a.n + 1,
            sum: a.sum + v,
        },
        "stats",
        JsonSerde::new(),
    )
    .to_stream()
    .to("agg", Produced::with(StringSerde, JsonSerde::new()));
    g.reduce(|a, b| a.max(b), "max")
        .to_stream()
        .to("max", Produced::with(StringSerde, I64Serde));
    let mut d = TopologyTestDriver::new(b.build().unwrap(), "app").unwrap();
    d.pipe("in", &StringSerde, &StringSerde, &s("k"), &s("3,-1,x,7"), 1)
        .unwrap();
    d.pipe("in", &StringSerde, &StringSerde, &s("k"), &s("5"), 2)
        .unwrap();
    let agg = d
        .read("agg", &StringSerde, &JsonSerde::<Stat>::new())
        .unwrap();
    assert_eq!(
        agg.last().map(|x| x.1.clone()),
        Some(Stat { n: 3, sum: 15 })
    );
    let max: Vec<i64> = d
        .read("max", &StringSerde, &I64Serde)
        .unwrap()
        .into_iter()
        .map(|x| x.1)
        .collect();
    assert_eq!(max, vec![3, 7, 7]);
}

#[test]
fn undeserializable_records_go_to_the_dead_letter_topic() {
    let b = StreamsBuilder::new();
    b.stream(
        "in",
        Consumed::with(StringSerde, JsonSerde::<serde_json::Value>::new()),
    )
    .to("out", Produced::with(StringSerde, JsonSerde::new()));
    let mut d = TopologyTestDriver::new(b.build().unwrap(), "app")
        .unwrap()
        .with_dead_letter_topic("dlq");
    d.pipe_raw("in", Some(b"k"), Some(b"{\"a\":1}"), 1).unwrap();
    d.pipe_raw("in", Some(b"k"), Some(b"{broken"), 2).unwrap();
    d.pipe_raw("in", Some(&[0xff, 0xfe]), Some(b"1"), 3)
        .unwrap(); // key not UTF-8
    assert_eq!(d.read_raw("out").len(), 1);
    assert_eq!(d.read_raw("dlq").len(), 2);
    assert_eq!(d.stats().deserialization_errors, 2);
    let w: Windowed<String> = Windowed {
        key: s("k"),
        start: 0,
        end: 1,
    };
    assert_eq!(w.key, "k");
}
