//! One `query_range` answer, parsed from the HTTP body as it arrives into compact points, within
//! bounds: memory grows with the points kept, never with the bytes read. The answer's bytes are
//! capped, so is any one JSON string in it (serde_json buffers a whole string before handing it
//! over), points beyond what the scan may keep are counted but not stored, and series labels
//! share a budget of their own.

use serde::de::{DeserializeSeed, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Longest JSON string read from an answer, bytes. Labels, values and error messages of real
/// servers are far shorter; without it one endless string would be buffered up to the byte cap.
pub(super) const MAX_STRING: u64 = 1 << 20;

/// Memory charged for a series beyond its label text, bytes: its label map's first node (about
/// 540 bytes for 11 slots), its slot in the answer's list and its vector. An estimate: it only
/// has to keep a flood of series proportional to what is kept.
const SERIES_OVERHEAD: usize = 640;
/// Memory charged for one label beyond its text (two `String`s and a map slot), bytes.
const LABEL_OVERHEAD: usize = 64;

/// What the scan may keep, shared by its concurrent answers.
pub(super) struct Bounds<'a> {
    /// Points of one series in one answer that are kept (the chunk's points and one more: a
    /// series beyond that is refused after the answer, by its count).
    pub per_series: usize,
    /// Points kept over the whole scan (`LEAK_SENTINEL_SCAN_MAX_POINTS`).
    pub max_points: usize,
    /// Points seen so far over all answers of the scan.
    pub points: &'a AtomicUsize,
    /// Bytes charged for series labels so far over all answers of the scan.
    pub label_bytes: &'a AtomicUsize,
    /// Bytes of labels the scan may hold.
    pub max_label_bytes: usize,
}

/// Why reading stopped before the answer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    /// More bytes than `max_bytes`.
    Bytes,
    /// A string longer than [`MAX_STRING`].
    LongString,
    /// Labels beyond `Bounds::max_label_bytes`.
    Labels,
}

/// The answer's envelope.
pub(super) struct Resp {
    pub status: String,
    pub data: Option<Data>,
    pub error_type: Option<String>,
    pub error: Option<String>,
}

/// Its `data`.
pub(super) struct Data {
    pub result_type: String,
    pub result: Vec<RawSeries>,
}

/// One series as kept.
pub(super) struct RawSeries {
    pub metric: BTreeMap<String, String>,
    /// The points kept, in the answer's order (all of them unless a bound was passed).
    pub values: Vec<Point>,
    /// The points the answer held for this series, kept or not.
    pub count: usize,
}

/// One `[time, "value"]` pair: time in Unix seconds, value in the series' unit. 16 bytes a point
/// instead of a `String` each. Unparsable values, `NaN` and stale markers become NaN and are
/// dropped as gaps.
pub(super) struct Point(pub f64, pub f64);

/// Reads one answer from `body`: at most `max_bytes` bytes, within `bounds`. The parse result
/// and, when reading stopped at a bound, which one (it explains the parse error).
pub(super) fn read<R: std::io::Read>(
    body: R,
    max_bytes: u64,
    bounds: &Bounds,
) -> (Result<Resp, serde_json::Error>, Option<Stop>) {
    let stop = Cell::new(None);
    let capped = Capped {
        inner: body,
        left: max_bytes,
        stop: &stop,
        in_string: false,
        escaped: false,
        run: 0,
    };
    let mut de = serde_json::Deserializer::from_reader(std::io::BufReader::new(capped));
    let parsed = RespSeed {
        bounds,
        stop: &stop,
    }
    .deserialize(&mut de)
    .and_then(|r| de.end().map(|()| r));
    (parsed, stop.get())
}

/// Counts what is read from an answer and stops at the cap; follows JSON strings to stop at one
/// longer than [`MAX_STRING`]. `stop` tells the caller why.
struct Capped<'a, R> {
    inner: R,
    left: u64,
    stop: &'a Cell<Option<Stop>>,
    /// Inside a string, after a backslash, and the string's length so far.
    in_string: bool,
    escaped: bool,
    run: u64,
}

impl<R: std::io::Read> std::io::Read for Capped<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            // One byte more tells "exactly at the cap" from "over it".
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => {
                    self.stop.set(Some(Stop::Bytes));
                    Err(std::io::Error::other("answer larger than the byte limit"))
                }
            };
        }
        let n = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let got = self.inner.read(&mut buf[..n])?;
        self.left -= got as u64;
        if self.follow(&buf[..got]) {
            self.stop.set(Some(Stop::LongString));
            return Err(std::io::Error::other("string longer than the limit"));
        }
        Ok(got)
    }
}

impl<R> Capped<'_, R> {
    /// Follows the strings through `bytes`; true when one grows past [`MAX_STRING`]. Counts raw
    /// bytes (an escape is two), which is at least what serde_json buffers.
    fn follow(&mut self, mut bytes: &[u8]) -> bool {
        while !bytes.is_empty() {
            if self.escaped {
                self.escaped = false;
                self.run += 1;
                bytes = &bytes[1..];
            } else if !self.in_string {
                let Some(q) = memchr::memchr(b'"', bytes) else {
                    return false;
                };
                (self.in_string, self.run) = (true, 0);
                bytes = &bytes[q + 1..];
            } else {
                let Some(q) = memchr::memchr2(b'"', b'\\', bytes) else {
                    self.run += bytes.len() as u64;
                    break;
                };
                self.run += q as u64;
                if bytes[q] == b'\\' {
                    (self.escaped, self.run) = (true, self.run + 1);
                } else {
                    self.in_string = false;
                }
                bytes = &bytes[q + 1..];
            }
            if self.run > MAX_STRING {
                return true;
            }
        }
        self.run > MAX_STRING
    }
}

/// Which of `names` a key is (`None`: a field we do not read).
struct Field(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for Field {
    type Value = Option<usize>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl<'de> Visitor<'de> for Field {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Option<usize>, E> {
        Ok(self.0.iter().position(|n| *n == v))
    }
}

/// Sets `slot` once, refusing a field given twice (as serde's derive does).
fn once<T, E: serde::de::Error>(slot: &mut Option<T>, name: &'static str, v: T) -> Result<(), E> {
    if slot.is_some() {
        return Err(E::duplicate_field(name));
    }
    *slot = Some(v);
    Ok(())
}

struct RespSeed<'a, 'b> {
    bounds: &'a Bounds<'b>,
    stop: &'a Cell<Option<Stop>>,
}

impl<'de> DeserializeSeed<'de> for RespSeed<'_, '_> {
    type Value = Resp;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Resp, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RespSeed<'_, '_> {
    type Value = Resp;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("struct Resp")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Resp, A::Error> {
        const NAMES: &[&str] = &["status", "data", "errorType", "error"];
        let (mut status, mut data, mut error_type, mut error) = (None, None, None, None);
        while let Some(k) = m.next_key_seed(Field(NAMES))? {
            match k {
                Some(0) => once(&mut status, NAMES[0], m.next_value::<String>()?)?,
                Some(1) => {
                    let v = m.next_value_seed(OptionalData(&self))?;
                    once(&mut data, NAMES[1], v)?
                }
                Some(2) => once(&mut error_type, NAMES[2], m.next_value()?)?,
                Some(3) => once(&mut error, NAMES[3], m.next_value()?)?,
                _ => {
                    m.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Resp {
            status: status.ok_or_else(|| A::Error::missing_field("status"))?,
            data: data.flatten(),
            error_type: error_type.flatten(),
            error: error.flatten(),
        })
    }
}

/// `data`, which may be `null`.
struct OptionalData<'s, 'a, 'b>(&'s RespSeed<'a, 'b>);

impl<'de> DeserializeSeed<'de> for OptionalData<'_, '_, '_> {
    type Value = Option<Data>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Option<Data>, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for OptionalData<'_, '_, '_> {
    type Value = Option<Data>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("option")
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<Option<Data>, E> {
        Ok(None)
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Option<Data>, E> {
        Ok(None)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Option<Data>, D::Error> {
        d.deserialize_map(DataSeed(self.0)).map(Some)
    }
}

struct DataSeed<'s, 'a, 'b>(&'s RespSeed<'a, 'b>);

impl<'de> Visitor<'de> for DataSeed<'_, '_, '_> {
    type Value = Data;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("struct Data")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Data, A::Error> {
        const NAMES: &[&str] = &["resultType", "result"];
        let (mut result_type, mut result) = (None, None);
        while let Some(k) = m.next_key_seed(Field(NAMES))? {
            match k {
                Some(0) => once(&mut result_type, NAMES[0], m.next_value::<String>()?)?,
                Some(1) => {
                    let v = m.next_value_seed(ResultSeed(self.0))?;
                    once(&mut result, NAMES[1], v)?
                }
                _ => {
                    m.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Data {
            result_type: result_type.ok_or_else(|| A::Error::missing_field("resultType"))?,
            result: result.ok_or_else(|| A::Error::missing_field("result"))?,
        })
    }
}

/// `result`: the series, each pushed as it is read.
struct ResultSeed<'s, 'a, 'b>(&'s RespSeed<'a, 'b>);

impl<'de> DeserializeSeed<'de> for ResultSeed<'_, '_, '_> {
    type Value = Vec<RawSeries>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ResultSeed<'_, '_, '_> {
    type Value = Vec<RawSeries>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a sequence")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Vec<RawSeries>, A::Error> {
        let mut out = Vec::new();
        while let Some(series) = s.next_element_seed(SeriesSeed(self.0))? {
            out.push(series);
        }
        Ok(out)
    }
}

struct SeriesSeed<'s, 'a, 'b>(&'s RespSeed<'a, 'b>);

impl<'de> DeserializeSeed<'de> for SeriesSeed<'_, '_, '_> {
    type Value = RawSeries;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<RawSeries, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for SeriesSeed<'_, '_, '_> {
    type Value = RawSeries;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("struct RawSeries")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<RawSeries, A::Error> {
        const NAMES: &[&str] = &["metric", "values"];
        charge(self.0, SERIES_OVERHEAD)?;
        let (mut metric, mut values) = (None, None);
        while let Some(k) = m.next_key_seed(Field(NAMES))? {
            match k {
                Some(0) => {
                    let v = m.next_value_seed(MetricSeed(self.0))?;
                    once(&mut metric, NAMES[0], v)?
                }
                Some(1) => {
                    let v = m.next_value_seed(ValuesSeed(self.0))?;
                    once(&mut values, NAMES[1], v)?
                }
                _ => {
                    m.next_value::<IgnoredAny>()?;
                }
            }
        }
        let (values, count) = values.ok_or_else(|| A::Error::missing_field("values"))?;
        Ok(RawSeries {
            metric: metric.ok_or_else(|| A::Error::missing_field("metric"))?,
            values,
            count,
        })
    }
}

/// Charges `bytes` of labels to the scan's budget, stopping the read past it.
fn charge<E: serde::de::Error>(r: &RespSeed, bytes: usize) -> Result<(), E> {
    let b = r.bounds;
    if b.label_bytes.fetch_add(bytes, Ordering::Relaxed) + bytes > b.max_label_bytes {
        r.stop.set(Some(Stop::Labels));
        return Err(E::custom("series labels beyond the limit"));
    }
    Ok(())
}

/// `metric`: the labels, charged to the budget as they are read.
struct MetricSeed<'s, 'a, 'b>(&'s RespSeed<'a, 'b>);

impl<'de> DeserializeSeed<'de> for MetricSeed<'_, '_, '_> {
    type Value = BTreeMap<String, String>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for MetricSeed<'_, '_, '_> {
    type Value = BTreeMap<String, String>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
        let mut labels = BTreeMap::new();
        while let Some((k, v)) = m.next_entry::<String, String>()? {
            charge(self.0, k.len() + v.len() + LABEL_OVERHEAD)?;
            labels.insert(k, v);
        }
        Ok(labels)
    }
}

/// `values`: the points, kept while the series and the scan are within their bounds, counted
/// always.
struct ValuesSeed<'s, 'a, 'b>(&'s RespSeed<'a, 'b>);

impl<'de> DeserializeSeed<'de> for ValuesSeed<'_, '_, '_> {
    type Value = (Vec<Point>, usize);
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ValuesSeed<'_, '_, '_> {
    type Value = (Vec<Point>, usize);
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a sequence")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
        let b = self.0.bounds;
        let (mut kept, mut count) = (Vec::new(), 0usize);
        while let Some(p) = s.next_element::<Point>()? {
            count += 1;
            // A point not kept always ends the scan in an error after the answer: its series
            // is over `per_series` (refused by its count), or the points of all answers are
            // over `max_points` (refused by the sum of the counts). So nothing judged is
            // missing one.
            if count <= b.per_series && b.points.fetch_add(1, Ordering::Relaxed) < b.max_points {
                kept.push(p);
            }
        }
        Ok((kept, count))
    }
}

impl<'de> serde::Deserialize<'de> for Point {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Point;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a [time, \"value\"] pair")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Point, A::Error> {
                let t: f64 = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(0, &self))?;
                let v = seq
                    .next_element::<Number>()?
                    .ok_or_else(|| A::Error::invalid_length(1, &self))?;
                Ok(Point(t, v.0))
            }
        }
        d.deserialize_seq(V)
    }
}

/// A value string read as a number without copying it into a `String` first.
struct Number(f64);

impl<'de> serde::Deserialize<'de> for Number {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Number;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Number, E> {
                Ok(Number(v.parse().unwrap_or(f64::NAN)))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out one byte per read, so every state of the string follower meets a read boundary.
    struct Trickle<'a>(&'a [u8]);

    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match (self.0.split_first(), buf.first_mut()) {
                (Some((b, rest)), Some(out)) => {
                    *out = *b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    fn parse(text: &str, per_series: usize, max_points: usize) -> (Option<Resp>, Option<Stop>) {
        let (points, label_bytes) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let b = Bounds {
            per_series,
            max_points,
            points: &points,
            label_bytes: &label_bytes,
            // Room for two series with a few labels.
            max_label_bytes: 2 * SERIES_OVERHEAD + 200,
        };
        let (r, stop) = read(Trickle(text.as_bytes()), 1 << 30, &b);
        (r.ok(), stop)
    }

    #[test]
    fn a_series_is_read_with_escapes_split_across_reads() {
        let text = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"a\"q":"b\\"},"values":[[1,"2"],[3,"NaN"],[4,"x"]],"value":[9,"9"]}]},
            "warnings":["w\"\\"]}"#;
        let (r, stop) = parse(text, 10, 10);
        assert_eq!(stop, None);
        let d = r.and_then(|r| r.data).expect("data");
        assert_eq!(d.result_type, "matrix");
        let s = &d.result[0];
        assert_eq!(s.metric.get("a\"q").map(String::as_str), Some("b\\"));
        assert_eq!(s.count, 3);
        assert_eq!((s.values[0].0, s.values[0].1), (1.0, 2.0));
        assert!(s.values[1].1.is_nan() && s.values[2].1.is_nan());
    }

    #[test]
    fn points_past_the_bounds_are_counted_not_kept() {
        let text = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{},"values":[[1,"1"],[2,"1"],[3,"1"],[4,"1"],[5,"1"]]},
            {"metric":{},"values":[[1,"1"],[2,"1"]]}]}}"#;
        let d = parse(text, 3, 4).0.and_then(|r| r.data).expect("data");
        let counts: Vec<_> = d.result.iter().map(|s| (s.values.len(), s.count)).collect();
        // The first keeps 3 of 5 (its series bound), the second 1 of 2 (the scan's 4).
        assert_eq!(counts, [(3, 5), (1, 2)]);
    }

    #[test]
    fn an_error_answer_and_null_data_are_read() {
        let text = r#"{"status":"error","data":null,"errorType":"bad_data","error":"parse error"}"#;
        let r = parse(text, 3, 4).0.expect("parsed");
        assert_eq!(r.status, "error");
        assert!(r.data.is_none());
        assert_eq!(r.error_type.as_deref(), Some("bad_data"));
        assert_eq!(r.error.as_deref(), Some("parse error"));
        // What serde's derive refused is still refused.
        for bad in [
            r#"{"data":null}"#,
            r#"{"status":"success","status":"success"}"#,
            r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{}}]}}"#,
            r#"{"status":"success"} trailing"#,
        ] {
            assert!(parse(bad, 3, 4).0.is_none(), "{bad}");
        }
    }

    #[test]
    fn a_string_past_the_limit_and_labels_past_the_budget_stop_the_read() {
        let at = |n: usize| format!(r#"{{"status":"{}"}}"#, "\\n".repeat(n / 2));
        assert_eq!(parse(&at(MAX_STRING as usize), 3, 4).1, None);
        assert_eq!(
            parse(&at(MAX_STRING as usize + 2), 3, 4).1,
            Some(Stop::LongString)
        );
        let series = r#"{"metric":{"a":"b"},"values":[]}"#;
        let answer = |n: usize| {
            format!(
                r#"{{"status":"success","data":{{"resultType":"matrix","result":[{}]}}}}"#,
                vec![series; n].join(",")
            )
        };
        assert_eq!(parse(&answer(2), 3, 4).1, None);
        assert_eq!(parse(&answer(3), 3, 4).1, Some(Stop::Labels));
    }

    #[test]
    fn every_truncation_of_an_answer_is_an_error_not_a_panic() {
        let text = r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"a":"b\"c"},"values":[[1.5,"2"],[3,"4e3"]]}]}}"#;
        assert!(parse(text, 10, 10).0.is_some());
        for n in 0..text.len() {
            let (points, label_bytes) = (AtomicUsize::new(0), AtomicUsize::new(0));
            let b = Bounds {
                per_series: 10,
                max_points: 10,
                points: &points,
                label_bytes: &label_bytes,
                max_label_bytes: 1 << 20,
            };
            let (r, stop) = read(Trickle(&text.as_bytes()[..n]), 1 << 20, &b);
            assert!(r.is_err() && stop.is_none(), "{n}: {}", &text[..n]);
        }
    }
}
