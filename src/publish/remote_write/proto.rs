//! The Prometheus remote-write 1.0 wire format: the few protobuf messages of `prompb`'s
//! `WriteRequest`, and the body a receiver expects (the message, snappy block-compressed).
//!
//! The messages are written by hand with `prost`'s derive rather than generated from the
//! `.proto` files at build time: that would need `protoc` on every machine that builds
//! leak-sentinel, for four small structs whose field numbers are fixed by the protocol
//! (prometheus/prompb/types.proto and remote.proto). Fields we never send (metadata,
//! exemplars, native histograms) are left out; a decoder skips absent fields.

/// `prometheus.WriteRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    /// The series of this request.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// `prometheus.TimeSeries`: one label set and its samples, oldest first.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    /// Labels sorted by name, `__name__` among them.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Samples in time order.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    /// Label name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Label value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    /// The value.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Unix time, milliseconds.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// The HTTP body of a request: the protobuf encoding, snappy block format (not the framed
/// stream format), as remote-write 1.0 specifies.
pub fn body(req: &WriteRequest) -> Vec<u8> {
    use prost::Message;
    let raw = req.encode_to_vec();
    // Compressing a buffer we just built in memory cannot fail but for a body over snappy's
    // ~4 GiB limit, which a bounded batch never reaches; an empty body would then be rejected.
    snap::raw::Encoder::new()
        .compress_vec(&raw)
        .unwrap_or_default()
}

/// Decodes a body (tests, and a check that what we send round-trips).
pub fn decode(body: &[u8]) -> anyhow::Result<WriteRequest> {
    use prost::Message;
    let raw = snap::raw::Decoder::new().decompress_vec(body)?;
    Ok(WriteRequest::decode(raw.as_slice())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_round_trips_and_matches_the_protobuf_bytes() {
        let req = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![Label {
                    name: "__name__".into(),
                    value: "up".into(),
                }],
                samples: vec![Sample {
                    value: 1.0,
                    timestamp: 1000,
                }],
            }],
        };
        use prost::Message;
        // Hand-encoded: field 1 (len 30) { field 1 (len 14) { 1:"__name__" 2:"up" },
        // field 2 (len 12) { 1: double 1.0 (1 + 8 bytes), 2: varint 1000 (1 + 2 bytes) } }.
        let mut want = vec![0x0a, 30, 0x0a, 14, 0x0a, 8];
        want.extend_from_slice(b"__name__");
        want.extend_from_slice(&[0x12, 2, b'u', b'p', 0x12, 12, 0x09]);
        want.extend_from_slice(&1.0f64.to_le_bytes());
        want.extend_from_slice(&[0x10, 0xe8, 0x07]);
        assert_eq!(req.encode_to_vec(), want);
        assert_eq!(decode(&body(&req)).expect("decodes"), req);
        assert!(decode(b"not snappy at all").is_err());
    }
}
