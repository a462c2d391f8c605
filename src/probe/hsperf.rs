//! JVM counters from the hsperfdata file (HotSpot's PerfData shared memory,
//! `/tmp/hsperfdata_USER/PID`): a pure, bounded parser of the format ([`parse`]), a reader that
//! keeps one handle per JVM so a sample costs one `pread` ([`JvmPerf`]), the GC summary derived
//! from the counters ([`JvmGc`]), and the tracker of the live set after collections
//! ([`LiveSetTracker`]).
//!
//! # The format (version 2.0, unchanged from JDK 6 to today)
//! Described in OpenJDK's `perfMemory.hpp` / `perfData.hpp` and jvmstat's
//! `PerfDataBuffer` v2_0. The file is a fixed-size memory region the JVM maps and updates in
//! place, without locks:
//!
//! * a 32-byte prologue: magic `CA FE C0 C0` (always in this byte order), `byte_order`
//!   (0 big-endian, 1 little-endian; every later integer is in that order), major and minor
//!   version, `accessible` (non-zero once the JVM finished creating it), `used` (bytes of the
//!   region in use), `overflow` (bytes of counters that did not fit), `mod_time_stamp` (ticks
//!   of the last structural change: an entry added), `entry_offset`, `num_entries`;
//! * `num_entries` entries, one after the other from `entry_offset`, each a 20-byte header
//!   (`entry_length`, `name_offset`, `vector_length`, `data_type`, `flags`, `data_units`,
//!   `data_variability`, `data_offset`; offsets relative to the entry) followed by a
//!   NUL-terminated ASCII name and the data: a `jlong` for type `'J'` scalars, bytes for type
//!   `'B'` vectors (strings when the units are "string").
//!
//! Entries are only ever appended (the header's `num_entries`, `used` and `mod_time_stamp`
//! change when they are); values change in place. So after one full parse, a later sample only
//! needs the header (to see that nothing was added) and the values at known offsets: see
//! [`PerfData::refresh`].
//!
//! # Safety of parsing
//! The file belongs to another process and may be torn (the JVM writes while we read), truncated
//! (it exits), or hostile. Every offset is bounds-checked with checked arithmetic, the walk is
//! bounded by [`MAX_FILE_BYTES`] and [`MAX_ENTRIES`] and always moves forward; an entry whose
//! own fields are inconsistent is skipped (counted in [`PerfData::skipped`]), an entry table that
//! cannot be walked is an error. Nothing here panics on any input.

use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Largest hsperfdata file (or buffer) read, bytes. The file's size is `-XX:PerfDataMemorySize`
/// rounded to pages: 32 KiB by default on JDK 17 (about 12 KiB of it used); 1 MiB leaves room
/// for JVMs started with a larger size while bounding what a hostile file can make us read.
pub const MAX_FILE_BYTES: usize = 1 << 20;

/// Most entries walked. A default JDK 17 file has about 200; an entry takes at least 40 bytes,
/// so a 1 MiB file cannot legitimately hold more than about 26,000.
pub const MAX_ENTRIES: usize = 32_768;

/// Highest generation, space and collector index read (`sun.gc.generation.N…`). HotSpot uses
/// 0–2; the bound keeps a corrupt file from making the summary large.
const MAX_INDEX: u32 = 16;

/// Size of the prologue, bytes.
const PROLOGUE_LEN: usize = 32;
/// Size of an entry header, bytes.
const ENTRY_HEADER_LEN: usize = 20;
/// The magic, as bytes in the file (HotSpot writes 0xcafec0c0 big-endian on every platform).
const MAGIC: [u8; 4] = [0xca, 0xfe, 0xc0, 0xc0];
/// `data_units` value of strings (`PerfData::U_String`).
const UNITS_STRING: u8 = 5;
/// Largest command line or environment read to explain a missing file, bytes.
const MAX_ARGS_BYTES: u64 = 256 * 1024;
/// Most directory entries looked at in one `/tmp` (a full /tmp must not stall a sample).
const MAX_TMP_ENTRIES: usize = 100_000;

/// Why the counters of a JVM could not be read. Every message is one line.
#[derive(Debug, thiserror::Error)]
pub enum HsperfError {
    /// The JVM was started with a flag that turns the file off.
    #[error("no hsperfdata file for JVM {pid}: it runs with {flag}, so it publishes no counters")]
    Disabled {
        /// The JVM's PID.
        pid: i32,
        /// The flag that disables the file, as written on the command line.
        flag: &'static str,
    },
    /// No file was found for the JVM.
    #[error(
        "no hsperfdata file for JVM {pid} (looked for {looked}): it may run with -XX:-UsePerfData or -XX:+PerfDisableSharedMem, or still be starting"
    )]
    NotFound {
        /// The JVM's PID.
        pid: i32,
        /// The paths looked for, quoted.
        looked: String,
    },
    /// The process does not exist.
    #[error("process {0} is gone")]
    NoProcess(i32),
    /// An I/O error on a path.
    #[error("reading '{path}': {source}")]
    Io {
        /// What was read.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The path is a symbolic link, directory, FIFO or device.
    #[error(
        "'{path}' is not a regular file (a symbolic link, directory or device): not reading it"
    )]
    NotRegular {
        /// The path.
        path: PathBuf,
    },
    /// The file or buffer is over [`MAX_FILE_BYTES`].
    #[error("hsperfdata is {size} bytes, over the {max}-byte bound")]
    TooLarge {
        /// Its size, bytes.
        size: u64,
        /// The bound, bytes.
        max: usize,
    },
    /// The buffer ends before what its header describes.
    #[error(
        "hsperfdata truncated: {len} bytes where the {what} needs {need} (the JVM exited or rewrote it mid-read?)"
    )]
    Truncated {
        /// Bytes available.
        len: usize,
        /// Bytes needed.
        need: u64,
        /// What needed them.
        what: &'static str,
    },
    /// Not an hsperfdata file.
    #[error("not an hsperfdata file: magic {found:#010x}, expected 0xcafec0c0")]
    BadMagic {
        /// The first four bytes, big-endian.
        found: u32,
    },
    /// The byte-order byte is neither 0 nor 1.
    #[error("hsperfdata byte order {0} is neither 0 (big-endian) nor 1 (little-endian)")]
    BadByteOrder(u8),
    /// A format version this reader does not know.
    #[error("hsperfdata version {major}.{minor} is not supported (only 2.x)")]
    UnsupportedVersion {
        /// Major version.
        major: u8,
        /// Minor version.
        minor: u8,
    },
    /// The JVM has not finished creating the file (zeroed, or `accessible` not yet set).
    #[error("hsperfdata not ready yet (the JVM is still starting)")]
    NotReady,
    /// Header fields that contradict each other or the bounds.
    #[error("hsperfdata header is inconsistent: {0}")]
    BadHeader(String),
    /// An entry whose length makes the rest of the table unreachable.
    #[error("hsperfdata entry {index} at byte {offset} is corrupt: {reason}")]
    BadEntry {
        /// Its position in the table (0-based).
        index: u32,
        /// Its offset from the start of the file, bytes.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
}

impl HsperfError {
    /// Whether trying again at the next sample may succeed: a JVM still starting, a read that
    /// raced with the JVM writing, an I/O error other than a refusal. The others (no file, a
    /// disabled file, a foreign or oversized file, no permission) will not change for this
    /// process.
    pub fn is_transient(&self) -> bool {
        match self {
            HsperfError::NotReady
            | HsperfError::Truncated { .. }
            | HsperfError::BadEntry { .. }
            | HsperfError::BadHeader(_) => true,
            HsperfError::Io { source, .. } => source.kind() != std::io::ErrorKind::PermissionDenied,
            _ => false,
        }
    }

    /// Whether the JVM has no file at all (disabled by a flag, or not found).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            HsperfError::Disabled { .. } | HsperfError::NotFound { .. }
        )
    }
}

/// The prologue of an hsperfdata file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Whether integers are big-endian (from the `byte_order` byte).
    pub big_endian: bool,
    /// Format major version (2).
    pub major_version: u8,
    /// Format minor version (0).
    pub minor_version: u8,
    /// Whether the JVM finished creating the file.
    pub accessible: bool,
    /// Bytes of the region in use (prologue and entries), bytes.
    pub used: u32,
    /// Bytes of counters that did not fit in the region, bytes.
    pub overflow: u32,
    /// Time of the last structural change (an entry added), high-resolution ticks since the JVM
    /// started (see `sun.os.hrt.frequency`).
    pub mod_time_stamp: i64,
    /// Offset of the first entry from the start of the file, bytes.
    pub entry_offset: u32,
    /// Number of entries.
    pub num_entries: u32,
}

impl Header {
    /// Reads the prologue at the start of `buf`.
    pub fn parse(buf: &[u8]) -> Result<Header, HsperfError> {
        let Some(pro) = buf.get(..PROLOGUE_LEN) else {
            return Err(HsperfError::Truncated {
                len: buf.len(),
                need: PROLOGUE_LEN as u64,
                what: "header",
            });
        };
        if pro[..4] != MAGIC {
            // The JVM creates the file, sizes it and zero-fills it before writing the prologue.
            if pro[..4] == [0; 4] {
                return Err(HsperfError::NotReady);
            }
            let found = u32::from_be_bytes([pro[0], pro[1], pro[2], pro[3]]);
            return Err(HsperfError::BadMagic { found });
        }
        let big_endian = match pro[4] {
            0 => true,
            1 => false,
            other => return Err(HsperfError::BadByteOrder(other)),
        };
        let (major_version, minor_version) = (pro[5], pro[6]);
        if major_version != 2 {
            return Err(HsperfError::UnsupportedVersion {
                major: major_version,
                minor: minor_version,
            });
        }
        let u32_at = |o| read_u32(pro, o, big_endian).unwrap_or(0);
        Ok(Header {
            big_endian,
            major_version,
            minor_version,
            accessible: pro[7] != 0,
            used: u32_at(8),
            overflow: u32_at(12),
            mod_time_stamp: read_i64(pro, 16, big_endian).unwrap_or(0),
            entry_offset: u32_at(24),
            num_entries: u32_at(28),
        })
    }

    /// Whether `other` describes the same entry table (no entry added): then the values of a
    /// parse of this one are at the same offsets in `other`'s buffer.
    fn same_layout(&self, other: &Header) -> bool {
        self.big_endian == other.big_endian
            && self.used == other.used
            && self.mod_time_stamp == other.mod_time_stamp
            && self.entry_offset == other.entry_offset
            && self.num_entries == other.num_entries
    }

    /// Checks that the JVM finished the file and that `used` fits in `len` bytes; returns `used`.
    fn used_len(&self, len: usize) -> Result<usize, HsperfError> {
        if !self.accessible {
            return Err(HsperfError::NotReady);
        }
        let used = self.used as usize;
        if used < PROLOGUE_LEN {
            return Err(HsperfError::BadHeader(format!(
                "{used} bytes used, less than the {PROLOGUE_LEN}-byte header"
            )));
        }
        if used > len {
            return Err(HsperfError::Truncated {
                len,
                need: u64::from(self.used),
                what: "used area",
            });
        }
        Ok(used)
    }
}

/// Unit of a counter (`data_units`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Units {
    /// A plain number.
    None,
    /// Bytes.
    Bytes,
    /// High-resolution ticks (divide by `sun.os.hrt.frequency` for seconds).
    Ticks,
    /// A count of events.
    Events,
    /// A string.
    String,
    /// Hertz.
    Hertz,
    /// A value this reader does not know.
    Unknown(u8),
}

impl Units {
    fn from_byte(b: u8) -> Units {
        match b {
            1 => Units::None,
            2 => Units::Bytes,
            3 => Units::Ticks,
            4 => Units::Events,
            UNITS_STRING => Units::String,
            6 => Units::Hertz,
            other => Units::Unknown(other),
        }
    }
}

/// How a counter changes (`data_variability`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Variability {
    /// Set once at startup.
    Constant,
    /// Only grows.
    Monotonic,
    /// Goes up and down.
    Variable,
    /// A value this reader does not know.
    Unknown(u8),
}

impl Variability {
    fn from_byte(b: u8) -> Variability {
        match b {
            1 => Variability::Constant,
            2 => Variability::Monotonic,
            3 => Variability::Variable,
            other => Variability::Unknown(other),
        }
    }
}

/// A `'J'` (64-bit integer) counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LongCounter {
    /// Its name, e.g. `sun.gc.generation.1.space.0.used`.
    pub name: String,
    /// Its value, in [`LongCounter::units`].
    pub value: i64,
    /// Its unit.
    pub units: Units,
    /// How it changes.
    pub variability: Variability,
    /// Offset of the value from the start of the file, bytes (always `+ 8 <= header.used`).
    offset: usize,
}

/// A `'B'` vector counter whose units are "string", e.g. `sun.rt.javaCommand`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringCounter {
    /// Its name.
    pub name: String,
    /// Its value, up to the first NUL (invalid UTF-8 replaced).
    pub value: String,
    /// How it changes.
    pub variability: Variability,
    /// Offset of the bytes from the start of the file, bytes.
    offset: usize,
    /// Capacity of the vector, bytes (always `offset + capacity <= header.used`).
    capacity: usize,
}

#[derive(Debug, Clone, Copy)]
enum Slot {
    Long(usize),
    Str(usize),
}

/// The parsed counters of one hsperfdata snapshot.
#[derive(Debug, Clone)]
pub struct PerfData {
    /// The prologue.
    pub header: Header,
    longs: Vec<LongCounter>,
    strings: Vec<StringCounter>,
    index: HashMap<String, Slot>,
    /// Entries skipped because their own fields were inconsistent (name or data outside the
    /// entry, no NUL, a name that is not printable ASCII, a duplicate name).
    pub skipped: usize,
    /// Well-formed entries of a kind this reader does not keep (other types, non-string
    /// vectors).
    pub unsupported: usize,
    plan: GcPlan,
}

/// Parses an hsperfdata snapshot. Pure: no I/O; never panics; reads nothing outside `buf`.
pub fn parse(buf: &[u8]) -> Result<PerfData, HsperfError> {
    if buf.len() > MAX_FILE_BYTES {
        return Err(HsperfError::TooLarge {
            size: buf.len() as u64,
            max: MAX_FILE_BYTES,
        });
    }
    let header = Header::parse(buf)?;
    let used = header.used_len(buf.len())?;
    if header.num_entries as usize > MAX_ENTRIES {
        return Err(HsperfError::BadHeader(format!(
            "{} entries, over the bound of {MAX_ENTRIES}",
            header.num_entries
        )));
    }
    let table = header.entry_offset as usize;
    if table < PROLOGUE_LEN || table > used {
        return Err(HsperfError::BadHeader(format!(
            "entry table at byte {table}, outside the {used} bytes used"
        )));
    }
    let area = &buf[..used];
    let big = header.big_endian;
    let mut data = PerfData {
        header,
        longs: Vec::new(),
        strings: Vec::new(),
        index: HashMap::new(),
        skipped: 0,
        unsupported: 0,
        plan: GcPlan::default(),
    };
    let mut off = table;
    for index in 0..header.num_entries {
        let bad = |reason| HsperfError::BadEntry {
            index,
            offset: off,
            reason,
        };
        let len = read_u32(area, off, big)
            .ok_or_else(|| bad("its header runs past the used area"))? as usize;
        // The length is what finds the next entry: if it is wrong, nothing after it can be
        // trusted, so this is an error rather than a skip. `len >= 20` also guarantees progress.
        if len < ENTRY_HEADER_LEN {
            return Err(bad("its length is shorter than an entry header"));
        }
        let end = off
            .checked_add(len)
            .filter(|&e| e <= used)
            .ok_or_else(|| bad("its length runs past the used area"))?;
        data.add(decode_entry(&area[off..end], big), off);
        off = end;
    }
    data.plan = GcPlan::build(&data);
    Ok(data)
}

/// One entry, decoded.
enum Decoded<'a> {
    Long {
        name: &'a [u8],
        value: i64,
        units: u8,
        variability: u8,
        data: usize,
    },
    Str {
        name: &'a [u8],
        bytes: &'a [u8],
        variability: u8,
        data: usize,
    },
    Unsupported,
    Malformed,
}

/// Decodes one entry (`entry` is exactly its `entry_length` bytes).
fn decode_entry(entry: &[u8], big: bool) -> Decoded<'_> {
    let (Some(name_off), Some(vector_len), Some(data_off)) = (
        read_u32(entry, 4, big),
        read_u32(entry, 8, big),
        read_u32(entry, 16, big),
    ) else {
        return Decoded::Malformed;
    };
    // In bounds: reading the u32 at 16 succeeded, so the entry has its 20 header bytes.
    let (ty, units, variability) = (entry[12], entry[14], entry[15]);
    let (name_off, vector_len, data) = (name_off as usize, vector_len as usize, data_off as usize);
    if name_off < ENTRY_HEADER_LEN {
        return Decoded::Malformed;
    }
    let Some(tail) = entry.get(name_off..) else {
        return Decoded::Malformed;
    };
    let Some(nul) = tail.iter().position(|&b| b == 0) else {
        return Decoded::Malformed;
    };
    let name = &tail[..nul];
    // HotSpot's names are dotted ASCII identifiers; anything else is garbage we must not index.
    if name.is_empty() || !name.iter().all(u8::is_ascii_graphic) {
        return Decoded::Malformed;
    }
    let field = |len: usize| {
        data.checked_add(len)
            .filter(|_| data >= ENTRY_HEADER_LEN)
            .and_then(|end| entry.get(data..end))
    };
    match (ty, vector_len) {
        (b'J', 0) => match field(8).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
            Some(b) => Decoded::Long {
                name,
                value: if big {
                    i64::from_be_bytes(b)
                } else {
                    i64::from_le_bytes(b)
                },
                units,
                variability,
                data,
            },
            None => Decoded::Malformed,
        },
        (b'B', n) if n > 0 && units == UNITS_STRING => match field(n) {
            Some(bytes) => Decoded::Str {
                name,
                bytes,
                variability,
                data,
            },
            None => Decoded::Malformed,
        },
        _ => Decoded::Unsupported,
    }
}

impl PerfData {
    /// Adds one decoded entry found at byte `off`.
    fn add(&mut self, d: Decoded<'_>, off: usize) {
        let (name, slot) = match d {
            Decoded::Unsupported => {
                self.unsupported += 1;
                return;
            }
            Decoded::Malformed => {
                self.skipped += 1;
                return;
            }
            Decoded::Long { name, .. } | Decoded::Str { name, .. } if self.has(name) => {
                self.skipped += 1;
                return;
            }
            Decoded::Long {
                name,
                value,
                units,
                variability,
                data,
            } => {
                self.longs.push(LongCounter {
                    name: String::from_utf8_lossy(name).into_owned(),
                    value,
                    units: Units::from_byte(units),
                    variability: Variability::from_byte(variability),
                    offset: off + data,
                });
                (name, Slot::Long(self.longs.len() - 1))
            }
            Decoded::Str {
                name,
                bytes,
                variability,
                data,
            } => {
                let mut value = String::new();
                push_c_string(&mut value, bytes);
                self.strings.push(StringCounter {
                    name: String::from_utf8_lossy(name).into_owned(),
                    value,
                    variability: Variability::from_byte(variability),
                    offset: off + data,
                    capacity: bytes.len(),
                });
                (name, Slot::Str(self.strings.len() - 1))
            }
        };
        self.index
            .insert(String::from_utf8_lossy(name).into_owned(), slot);
    }

    fn has(&self, name: &[u8]) -> bool {
        std::str::from_utf8(name).is_ok_and(|n| self.index.contains_key(n))
    }

    /// The value of a `'J'` counter.
    pub fn long(&self, name: &str) -> Option<i64> {
        match self.index.get(name)? {
            Slot::Long(i) => self.longs.get(*i).map(|c| c.value),
            Slot::Str(_) => None,
        }
    }

    /// The value of a string counter.
    pub fn string(&self, name: &str) -> Option<&str> {
        match self.index.get(name)? {
            Slot::Str(i) => self.strings.get(*i).map(|c| c.value.as_str()),
            Slot::Long(_) => None,
        }
    }

    /// Every `'J'` counter, in file order.
    pub fn longs(&self) -> &[LongCounter] {
        &self.longs
    }

    /// Every string counter, in file order.
    pub fn strings(&self) -> &[StringCounter] {
        &self.strings
    }

    /// Updates the values from a newer snapshot of the same file. When its header shows the
    /// same entry table (the usual case: entries are only added while the JVM starts or loads a
    /// subsystem), only the values are read, at the offsets found by the first parse (no name
    /// is looked at); otherwise the snapshot is parsed anew. Returns whether it was re-parsed.
    /// On error `self` is left unchanged.
    pub fn refresh(&mut self, buf: &[u8]) -> Result<bool, HsperfError> {
        let header = Header::parse(buf)?;
        if !self.header.same_layout(&header) {
            *self = parse(buf)?;
            return Ok(true);
        }
        // Every offset below is within the `used` bytes of the first parse, which is also this
        // header's `used`: checking it against `buf` once makes every read in bounds.
        let used = header.used_len(buf.len())?;
        let area = &buf[..used];
        let big = header.big_endian;
        for c in &mut self.longs {
            if let Some(v) = read_i64(area, c.offset, big) {
                c.value = v;
            }
        }
        for c in &mut self.strings {
            if c.variability == Variability::Constant {
                continue;
            }
            if let Some(bytes) = c
                .offset
                .checked_add(c.capacity)
                .and_then(|end| area.get(c.offset..end))
            {
                c.value.clear();
                push_c_string(&mut c.value, bytes);
            }
        }
        self.header = header;
        Ok(false)
    }

    /// The GC summary of this snapshot.
    pub fn gc(&self) -> JvmGc {
        self.plan.summary(self)
    }
}

/// Appends the bytes up to the first NUL, replacing invalid UTF-8 (no allocation when `out`
/// has the capacity, which a refresh reuses).
fn push_c_string(out: &mut String, bytes: &[u8]) {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let bytes = &bytes[..end];
    match std::str::from_utf8(bytes) {
        Ok(s) => out.push_str(s),
        Err(_) => out.push_str(&String::from_utf8_lossy(bytes)),
    }
}

fn read_u32(buf: &[u8], off: usize, big: bool) -> Option<u32> {
    let b: [u8; 4] = buf.get(off..off.checked_add(4)?)?.try_into().ok()?;
    Some(if big {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    })
}

fn read_i64(buf: &[u8], off: usize, big: bool) -> Option<i64> {
    let b: [u8; 8] = buf.get(off..off.checked_add(8)?)?.try_into().ok()?;
    Some(if big {
        i64::from_be_bytes(b)
    } else {
        i64::from_le_bytes(b)
    })
}

/// What kind of collection a collector counts, from its name (`sun.gc.collector.N.name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CollectorKind {
    /// Young-generation (incremental) pauses. G1 counts its mixed collections, which also
    /// reclaim old regions, here too.
    Young,
    /// Full (whole-heap, compacting) collections.
    Full,
    /// Pauses of a concurrent cycle (G1 remark/cleanup, ZGC, CMS).
    Concurrent,
    /// A name this reader does not know.
    Other,
}

impl CollectorKind {
    /// Classifies a collector by its name. JDK 17 names its collectors "G1 young collection
    /// pauses", "G1 full collection pauses", "G1 concurrent cycle pauses", "Serial …",
    /// "Parallel …", "Shenandoah full", "Z concurrent cycle pauses"; older JDKs used "Copy",
    /// "MSC", "PSScavenge", "PSParallelCompact", "G1 incremental collections",
    /// "G1 stop-the-world full collections", "ParNew", "CMS".
    pub fn from_name(name: &str) -> CollectorKind {
        let n = name.to_ascii_lowercase();
        let has = |w: &str| n.contains(w);
        if has("full") || n == "msc" || has("marksweepcompact") || has("psparallelcompact") {
            CollectorKind::Full
        } else if has("young")
            || has("incremental")
            || has("scavenge")
            || has("partial")
            || n == "copy"
            || n == "pcopy"
            || n == "parnew"
        {
            CollectorKind::Young
        } else if has("concurrent") || has("cycle") || n == "cms" {
            CollectorKind::Concurrent
        } else {
            CollectorKind::Other
        }
    }
}

/// One generation of the heap (`sun.gc.generation.N`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GenerationGc {
    /// Its index N.
    pub index: u32,
    /// Its name: "young"/"new", "old" (G1, Serial, Parallel, ZGC), "Heap" (Shenandoah).
    pub name: String,
    /// Bytes in use: the sum of its spaces' `used`, bytes. `None` when a space lacks it.
    pub used_bytes: Option<u64>,
    /// Bytes committed (`capacity`, else the sum of its spaces' capacities), bytes.
    pub committed_bytes: Option<u64>,
    /// Most it may grow to (`maxCapacity`), bytes. For G1 every generation reports the whole
    /// heap's maximum, so these do not add up.
    pub max_bytes: Option<u64>,
}

/// One collector (`sun.gc.collector.N`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CollectorGc {
    /// Its index N.
    pub index: u32,
    /// Its name, e.g. "G1 young collection pauses".
    pub name: String,
    /// What it collects, from the name.
    pub kind: CollectorKind,
    /// Collections (pauses) since the JVM started, count.
    pub invocations: Option<u64>,
    /// Time spent in them since the JVM started, seconds (`time` ticks over
    /// `sun.os.hrt.frequency`).
    pub time_s: Option<f64>,
}

/// A typed summary of a JVM's memory and GC counters at one sample. Each field is `None` when
/// the JVM does not publish it (other collectors, older JDKs) or the entry was skipped.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JvmGc {
    /// Time since the JVM started (`sun.os.hrt.ticks` over `sun.os.hrt.frequency`), seconds.
    pub uptime_s: Option<f64>,
    /// Raw `sun.os.hrt.ticks`, high-resolution ticks since the JVM started. The JVM's sampler
    /// moves it every 50 ms (`-XX:PerfDataSamplingInterval`); a value that stops moving means
    /// the JVM exited (the file then keeps its last values) or is stopped.
    pub hrt_ticks: Option<i64>,
    /// The generations, by index.
    pub generations: Vec<GenerationGc>,
    /// Heap in use: the sum of the generations' used, bytes.
    pub heap_used_bytes: Option<u64>,
    /// Heap committed: the sum of the generations' committed, bytes.
    pub heap_committed_bytes: Option<u64>,
    /// Old generation in use (the generation named "old", else the last one), bytes. Between
    /// collections it also holds garbage; see [`LiveSetTracker`] for the live set.
    pub old_used_bytes: Option<u64>,
    /// Old generation committed, bytes.
    pub old_committed_bytes: Option<u64>,
    /// Metaspace in use, class space included (`sun.gc.metaspace.used`), bytes. The JVM
    /// refreshes the metaspace figures at the end of each collection only: they are `None`
    /// before the first one, and the value at the last collection afterwards.
    pub metaspace_used_bytes: Option<u64>,
    /// Metaspace committed (`sun.gc.metaspace.capacity`), bytes.
    pub metaspace_committed_bytes: Option<u64>,
    /// Compressed class space in use, part of the metaspace figure
    /// (`sun.gc.compressedclassspace.used`), bytes.
    pub class_space_used_bytes: Option<u64>,
    /// The collectors, by index.
    pub collectors: Vec<CollectorGc>,
    /// Live Java threads (`java.threads.live`), count.
    pub threads_live: Option<u64>,
    /// Classes loaded now, from the CDS archive or not (`java.cls.loadedClasses` +
    /// `sharedLoadedClasses` − `unloadedClasses` − `sharedUnloadedClasses`), count.
    pub classes_loaded: Option<u64>,
    /// Cause of the last collection (`sun.gc.lastCause`), e.g. "G1 Evacuation Pause".
    pub last_gc_cause: Option<String>,
}

impl JvmGc {
    /// Full collections since the JVM started: the sum over collectors of [`CollectorKind::Full`];
    /// `None` when the JVM has no such collector (ZGC) or does not say.
    pub fn full_invocations(&self) -> Option<u64> {
        sum_all(
            self.collectors
                .iter()
                .filter(|c| c.kind == CollectorKind::Full)
                .map(|c| c.invocations),
        )
    }

    /// Collections of any kind since the JVM started, count.
    pub fn total_invocations(&self) -> Option<u64> {
        sum_all(self.collectors.iter().map(|c| c.invocations))
    }

    /// Time in collection pauses since the JVM started, seconds.
    pub fn total_gc_time_s(&self) -> Option<f64> {
        let mut total = None;
        for c in &self.collectors {
            total = Some(total.unwrap_or(0.0) + c.time_s?);
        }
        total
    }
}

/// The sum, or `None` when empty or when any term is missing (a partial sum would look like a
/// step in the series).
fn sum_all(terms: impl Iterator<Item = Option<u64>>) -> Option<u64> {
    let mut total: Option<u64> = None;
    for t in terms {
        total = Some(total.unwrap_or(0).saturating_add(t?));
    }
    total
}

/// Where the counters of the summary are, as indices into `PerfData::longs` / `strings`: found
/// once per parse so that a sample does no name lookups.
#[derive(Debug, Clone, Default)]
struct GcPlan {
    generations: Vec<GenPlan>,
    collectors: Vec<CollectorPlan>,
    frequency: Option<usize>,
    ticks: Option<usize>,
    metaspace_used: Option<usize>,
    metaspace_capacity: Option<usize>,
    class_space_used: Option<usize>,
    threads_live: Option<usize>,
    classes_loaded: Option<usize>,
    classes_unloaded: Option<usize>,
    shared_classes_loaded: Option<usize>,
    shared_classes_unloaded: Option<usize>,
    last_cause: Option<usize>,
}

#[derive(Debug, Clone, Default)]
struct GenPlan {
    index: u32,
    name: Option<usize>,
    capacity: Option<usize>,
    max_capacity: Option<usize>,
    spaces: BTreeMap<u32, SpacePlan>,
}

#[derive(Debug, Clone, Copy, Default)]
struct SpacePlan {
    used: Option<usize>,
    capacity: Option<usize>,
}

#[derive(Debug, Clone, Default)]
struct CollectorPlan {
    index: u32,
    name: Option<usize>,
    invocations: Option<usize>,
    time: Option<usize>,
}

/// `"N.rest"` → `(N, "rest")` for N below [`MAX_INDEX`].
fn split_index(s: &str) -> Option<(u32, &str)> {
    let (n, rest) = s.split_once('.')?;
    let n: u32 = n.parse().ok()?;
    (n < MAX_INDEX).then_some((n, rest))
}

impl GcPlan {
    fn build(data: &PerfData) -> GcPlan {
        let mut plan = GcPlan::default();
        let mut gens: BTreeMap<u32, GenPlan> = BTreeMap::new();
        let mut collectors: BTreeMap<u32, CollectorPlan> = BTreeMap::new();
        for (i, c) in data.longs.iter().enumerate() {
            let name = c.name.as_str();
            if let Some((n, rest)) = name
                .strip_prefix("sun.gc.generation.")
                .and_then(split_index)
            {
                let g = gens.entry(n).or_insert_with(|| GenPlan {
                    index: n,
                    ..GenPlan::default()
                });
                match rest {
                    "capacity" => g.capacity = Some(i),
                    "maxCapacity" => g.max_capacity = Some(i),
                    _ => {
                        if let Some((m, field)) = rest.strip_prefix("space.").and_then(split_index)
                        {
                            let s = g.spaces.entry(m).or_default();
                            match field {
                                "used" => s.used = Some(i),
                                "capacity" => s.capacity = Some(i),
                                _ => {}
                            }
                        }
                    }
                }
            } else if let Some((n, rest)) =
                name.strip_prefix("sun.gc.collector.").and_then(split_index)
            {
                let k = collectors.entry(n).or_insert_with(|| CollectorPlan {
                    index: n,
                    ..CollectorPlan::default()
                });
                match rest {
                    "invocations" => k.invocations = Some(i),
                    "time" => k.time = Some(i),
                    _ => {}
                }
            } else {
                let slot = match name {
                    "sun.os.hrt.frequency" => &mut plan.frequency,
                    "sun.os.hrt.ticks" => &mut plan.ticks,
                    "sun.gc.metaspace.used" => &mut plan.metaspace_used,
                    "sun.gc.metaspace.capacity" => &mut plan.metaspace_capacity,
                    "sun.gc.compressedclassspace.used" => &mut plan.class_space_used,
                    "java.threads.live" => &mut plan.threads_live,
                    "java.cls.loadedClasses" => &mut plan.classes_loaded,
                    "java.cls.unloadedClasses" => &mut plan.classes_unloaded,
                    "java.cls.sharedLoadedClasses" => &mut plan.shared_classes_loaded,
                    "java.cls.sharedUnloadedClasses" => &mut plan.shared_classes_unloaded,
                    _ => continue,
                };
                *slot = Some(i);
            }
        }
        for (i, c) in data.strings.iter().enumerate() {
            let name = c.name.as_str();
            if name == "sun.gc.lastCause" {
                plan.last_cause = Some(i);
            } else if let Some((n, "name")) = name
                .strip_prefix("sun.gc.generation.")
                .and_then(split_index)
            {
                gens.entry(n)
                    .or_insert_with(|| GenPlan {
                        index: n,
                        ..GenPlan::default()
                    })
                    .name = Some(i);
            } else if let Some((n, "name")) =
                name.strip_prefix("sun.gc.collector.").and_then(split_index)
            {
                collectors
                    .entry(n)
                    .or_insert_with(|| CollectorPlan {
                        index: n,
                        ..CollectorPlan::default()
                    })
                    .name = Some(i);
            }
        }
        plan.generations = gens.into_values().collect();
        plan.collectors = collectors.into_values().collect();
        plan
    }

    fn summary(&self, data: &PerfData) -> JvmGc {
        let long = |i: Option<usize>| i.and_then(|i| data.longs.get(i)).map(|c| c.value);
        let bytes = |i: Option<usize>| long(i).and_then(|v| u64::try_from(v).ok());
        let text = |i: Option<usize>| i.and_then(|i| data.strings.get(i)).map(|c| c.value.clone());
        let frequency = long(self.frequency).filter(|&f| f > 0);
        let seconds = |ticks: Option<i64>| match (ticks, frequency) {
            (Some(t), Some(f)) if t >= 0 => Some(t as f64 / f as f64),
            _ => None,
        };
        let generations: Vec<GenerationGc> = self
            .generations
            .iter()
            .map(|g| GenerationGc {
                index: g.index,
                name: text(g.name).unwrap_or_default(),
                used_bytes: sum_all(g.spaces.values().map(|s| bytes(s.used))),
                committed_bytes: bytes(g.capacity)
                    .or_else(|| sum_all(g.spaces.values().map(|s| bytes(s.capacity)))),
                max_bytes: bytes(g.max_capacity),
            })
            .collect();
        let old = generations
            .iter()
            .find(|g| g.name.eq_ignore_ascii_case("old"))
            .or_else(|| generations.last());
        let hrt_ticks = long(self.ticks);
        // HotSpot refreshes the metaspace counters at the end of each collection only: before
        // the first one they all read 0, which is "not published yet", not "empty" (a running
        // JVM always has metaspace committed).
        let metaspace_published = bytes(self.metaspace_capacity).is_some_and(|c| c > 0);
        let metaspace = |i| bytes(i).filter(|_| metaspace_published);
        JvmGc {
            uptime_s: seconds(hrt_ticks),
            hrt_ticks,
            heap_used_bytes: sum_all(generations.iter().map(|g| g.used_bytes)),
            heap_committed_bytes: sum_all(generations.iter().map(|g| g.committed_bytes)),
            old_used_bytes: old.and_then(|g| g.used_bytes),
            old_committed_bytes: old.and_then(|g| g.committed_bytes),
            metaspace_used_bytes: metaspace(self.metaspace_used),
            metaspace_committed_bytes: metaspace(self.metaspace_capacity),
            class_space_used_bytes: metaspace(self.class_space_used),
            collectors: self
                .collectors
                .iter()
                .map(|k| {
                    let name = text(k.name).unwrap_or_default();
                    CollectorGc {
                        index: k.index,
                        kind: CollectorKind::from_name(&name),
                        name,
                        invocations: bytes(k.invocations),
                        time_s: seconds(long(k.time)),
                    }
                })
                .collect(),
            threads_live: bytes(self.threads_live),
            // As `jstat -class`: classes from the CDS archive are counted apart.
            classes_loaded: bytes(self.classes_loaded).map(|loaded| {
                let n = |i| bytes(i).unwrap_or(0);
                (loaded.saturating_add(n(self.shared_classes_loaded)))
                    .saturating_sub(n(self.classes_unloaded))
                    .saturating_sub(n(self.shared_classes_unloaded))
            }),
            last_gc_cause: text(self.last_cause),
            generations,
        }
    }
}

/// Why a [`LivePoint`] was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LiveCause {
    /// A full collection ran (a full collector's invocations grew).
    FullGc,
    /// The old generation shrank: G1 mixed collections or cleanup, a ZGC/Shenandoah cycle.
    OldDrop,
}

/// One estimate of the live set: old-generation use at the bottom of a collection.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LivePoint {
    /// Time of the sample it was read at, in the caller's clock (seconds).
    pub t_s: f64,
    /// Old generation in use then, bytes.
    pub old_used_bytes: u64,
    /// What showed that old space had just been collected.
    pub cause: LiveCause,
}

/// Turns successive [`JvmGc`] summaries into the "live set after GC" signal: one
/// [`LivePoint`] per old-space collection, at the floor it reached. Pure: the caller passes
/// the time.
///
/// Why this rule, and not "old used after every sample" or "the minimum over a window":
/// between collections the old generation also holds dead objects promoted since the last one,
/// so its use rises and falls in a sawtooth whose *floor* is the live set (plus floating
/// garbage). Only a collection that reclaims old space shows that floor: a full collection
/// (its collector's count grew) or, for G1's mixed collections and for single-generation
/// concurrent collectors (ZGC, Shenandoah), a drop in old use between samples. A G1 mixed
/// phase spans several pauses and so several samples, each lower than the last, and the first
/// sample after a drop still holds garbage in regions not yet collected: so consecutive
/// shrinking samples form one *episode*, and the point is the lowest of them, emitted at the
/// first sample that no longer shrinks. That gives one point per reclaim (a long mixed phase
/// does not weigh more than a short one) at the value closest to the live set. A fixed window's
/// minimum would instead mix floors with promotion peaks whenever collections are rarer than
/// the window. A full collection after old use grew starts a new episode (it shows the data
/// retained since, which must not be hidden by the earlier, lower floor).
///
/// The first sample never yields a point (nothing says a collection just happened), and a JVM
/// that never collects its old space yields none: the caller then has no live-set evidence
/// and should say so (G1 starts old collections only past `-XX:InitiatingHeapOccupancyPercent`,
/// 45 % of the heap by default).
#[derive(Debug, Clone, Default)]
pub struct LiveSetTracker {
    prev_old: Option<u64>,
    prev_full: Option<u64>,
    prev_ticks: Option<i64>,
    pending: Option<LivePoint>,
}

impl LiveSetTracker {
    /// A tracker that has seen nothing.
    pub fn new() -> Self {
        LiveSetTracker::default()
    }

    /// Takes the summary read at `t_s`; returns a point when an episode just ended.
    pub fn observe(&mut self, t_s: f64, gc: &JvmGc) -> Option<LivePoint> {
        let old = gc.old_used_bytes?;
        let full = gc.full_invocations();
        // Counters that go backwards belong to another JVM (the PID was reused): close the
        // episode of the old one and start afresh.
        let went_back = |prev: Option<i64>, now: Option<i64>| matches!((prev, now), (Some(p), Some(n)) if n < p);
        if went_back(self.prev_ticks, gc.hrt_ticks)
            || went_back(self.prev_full.map(|v| v as i64), full.map(|v| v as i64))
        {
            let out = self.pending.take();
            *self = LiveSetTracker {
                prev_old: Some(old),
                prev_full: full,
                prev_ticks: gc.hrt_ticks,
                pending: None,
            };
            return out;
        }
        let dropped = self.prev_old.is_some_and(|p| old < p);
        let full_ran = matches!((self.prev_full, full), (Some(p), Some(n)) if n > p);
        self.prev_old = Some(old);
        self.prev_full = full;
        self.prev_ticks = gc.hrt_ticks;
        if !dropped && !full_ran {
            return self.pending.take();
        }
        let here = LivePoint {
            t_s,
            old_used_bytes: old,
            cause: if full_ran {
                LiveCause::FullGc
            } else {
                LiveCause::OldDrop
            },
        };
        match self.pending.take() {
            Some(p) if full_ran && !dropped => {
                self.pending = Some(here);
                Some(p)
            }
            Some(p) => {
                self.pending = Some(if here.old_used_bytes < p.old_used_bytes {
                    here
                } else {
                    p
                });
                None
            }
            None => {
                self.pending = Some(here);
                None
            }
        }
    }

    /// Ends the current episode, if any (at the end of a run).
    pub fn flush(&mut self) -> Option<LivePoint> {
        self.pending.take()
    }
}

/// An open hsperfdata file of one JVM. Holding it keeps the cost of a sample at one `pread` of
/// the used bytes (about 12 KiB on JDK 17) plus reading the values at known offsets; a second
/// `pread` only when the JVM added entries since the last sample.
///
/// After the JVM exits its file is deleted but this handle still reads its last values: the
/// caller knows from /proc that the process is gone (or see [`JvmPerf::is_unlinked`] and
/// [`JvmGc::hrt_ticks`]). A PID reused by another JVM has a new file: open it anew.
#[derive(Debug)]
pub struct JvmPerf {
    path: PathBuf,
    file: File,
    /// Size of the file at open, bytes (the JVM never resizes it).
    file_len: usize,
    /// Reused read buffer, `file_len` bytes.
    buf: Vec<u8>,
    /// Bytes read by the last sample.
    last_read: usize,
    data: PerfData,
}

impl JvmPerf {
    /// Finds ([`find_file`]) and opens the file of JVM `pid`.
    pub fn open(pid: i32) -> Result<JvmPerf, HsperfError> {
        JvmPerf::open_path(&find_file(pid)?)
    }

    /// Opens an hsperfdata file: refuses symbolic links (`O_NOFOLLOW`), anything but a regular
    /// file and files over [`MAX_FILE_BYTES`]; reads and parses it once.
    pub fn open_path(path: &Path) -> Result<JvmPerf, HsperfError> {
        let io = |source: std::io::Error| {
            if source.raw_os_error() == Some(libc::ELOOP) {
                HsperfError::NotRegular {
                    path: path.to_path_buf(),
                }
            } else {
                HsperfError::Io {
                    path: path.to_path_buf(),
                    source,
                }
            }
        };
        // O_NONBLOCK: a FIFO planted at the path must not block the open (fstat refuses it).
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(path)
            .map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        if !meta.file_type().is_file() {
            return Err(HsperfError::NotRegular {
                path: path.to_path_buf(),
            });
        }
        if meta.len() > MAX_FILE_BYTES as u64 {
            return Err(HsperfError::TooLarge {
                size: meta.len(),
                max: MAX_FILE_BYTES,
            });
        }
        let file_len = meta.len() as usize;
        let mut buf = vec![0; file_len];
        read_full(&file, &mut buf, path)?;
        let data = parse(&buf)?;
        Ok(JvmPerf {
            path: path.to_path_buf(),
            file,
            file_len,
            buf,
            last_read: file_len,
            data,
        })
    }

    /// Reads the counters now and returns the GC summary.
    pub fn sample(&mut self) -> Result<JvmGc, HsperfError> {
        self.refresh()?;
        Ok(self.data.gc())
    }

    /// Reads the counters now (one `pread` of the used bytes; two when entries were added).
    pub fn refresh(&mut self) -> Result<&PerfData, HsperfError> {
        let mut want = (self.data.header.used as usize).clamp(PROLOGUE_LEN, self.file_len);
        read_full(&self.file, &mut self.buf[..want], &self.path)?;
        let header = Header::parse(&self.buf[..want])?;
        let used = header.used as usize;
        if used > want && used <= self.file_len {
            want = used;
            read_full(&self.file, &mut self.buf[..want], &self.path)?;
        }
        self.last_read = want;
        self.data.refresh(&self.buf[..want])?;
        Ok(&self.data)
    }

    /// The counters of the last sample.
    pub fn data(&self) -> &PerfData {
        &self.data
    }

    /// The file read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes read by the last sample.
    pub fn last_read_bytes(&self) -> usize {
        self.last_read
    }

    /// Whether the file was deleted since it was opened (one `fstat`): the JVM exited, or a
    /// /tmp cleaner removed it (the JVM then still updates it and this handle still reads it).
    pub fn is_unlinked(&self) -> Result<bool, HsperfError> {
        let meta = self.file.metadata().map_err(|source| HsperfError::Io {
            path: self.path.clone(),
            source,
        })?;
        Ok(meta.nlink() == 0)
    }
}

/// Fills `buf` from offset 0 with `pread`; a file shorter than `buf` is a truncation.
fn read_full(file: &File, buf: &mut [u8], path: &Path) -> Result<(), HsperfError> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], got as u64) {
            Ok(0) => {
                return Err(HsperfError::Truncated {
                    len: got,
                    need: buf.len() as u64,
                    what: "read",
                });
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(HsperfError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
    }
    Ok(())
}

/// Finds the hsperfdata file of JVM `pid`; see [`find_file_in`].
pub fn find_file(pid: i32) -> Result<PathBuf, HsperfError> {
    find_file_in(Path::new("/proc"), Path::new("/tmp"), pid)
}

/// Finds the hsperfdata file of JVM `pid`, with /proc at `proc_root` and the host's /tmp at
/// `host_tmp` (parameters so tests can use a fake tree).
///
/// A JVM names its file after its PID *in its own PID namespace* (the last field of `NSpid:`
/// in /proc/PID/status) under the /tmp *of its own mount namespace*, so the file is looked for
/// as `/proc/PID/root/tmp/hsperfdata_*/NSPID`: this finds JVMs in containers and services with
/// a private /tmp. Only when that /tmp cannot be read (another user's process without the
/// right to look into its root) and the PID namespace is ours (NSPID = PID) is the host's
/// `/tmp/hsperfdata_*/PID` used instead; in another namespace a file of that name would belong
/// to a different process. When several users' directories hold the PID (a stale file of a
/// dead JVM), the one owned by the process's effective user wins, then the newest.
pub fn find_file_in(proc_root: &Path, host_tmp: &Path, pid: i32) -> Result<PathBuf, HsperfError> {
    let proc_dir = proc_root.join(pid.to_string());
    let status_path = proc_dir.join("status");
    let status = match std::fs::read_to_string(&status_path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(HsperfError::NoProcess(pid));
        }
        Err(source) => {
            return Err(HsperfError::Io {
                path: status_path,
                source,
            });
        }
    };
    let (nspid, euid) = parse_status(&status, pid);
    let mut found = Vec::new();
    let ns_tmp = proc_dir.join("root").join("tmp");
    let mut looked = vec![format!("'{}/hsperfdata_*/{nspid}'", ns_tmp.display())];
    let ns_readable = scan_tmp(&ns_tmp, nspid, &mut found);
    if !ns_readable && nspid == pid {
        looked.push(format!("'{}/hsperfdata_*/{pid}'", host_tmp.display()));
        scan_tmp(host_tmp, pid, &mut found);
    }
    // Owned by the process's user first, then the newest.
    found.sort_by_key(|c: &Candidate| (Some(c.uid) != euid, std::cmp::Reverse(c.mtime)));
    match found.into_iter().next() {
        Some(c) => Ok(c.path),
        None => Err(match disabled_flag(&proc_dir) {
            Some(flag) => HsperfError::Disabled { pid, flag },
            None => HsperfError::NotFound {
                pid,
                looked: looked.join(" and "),
            },
        }),
    }
}

struct Candidate {
    path: PathBuf,
    uid: u32,
    mtime: i64,
}

/// The PID in the process's own namespace (last field of `NSpid:`; `pid` on kernels without
/// it) and its effective UID (second field of `Uid:`).
pub(crate) fn parse_status(status: &str, pid: i32) -> (i32, Option<u32>) {
    let mut nspid = pid;
    let mut euid = None;
    for line in status.lines() {
        if let Some(rest) = line.strip_prefix("NSpid:") {
            if let Some(v) = rest.split_whitespace().last().and_then(|s| s.parse().ok()) {
                nspid = v;
            }
        } else if let Some(rest) = line.strip_prefix("Uid:") {
            euid = rest.split_whitespace().nth(1).and_then(|s| s.parse().ok());
        }
    }
    (nspid, euid)
}

/// Adds the regular files `tmp/hsperfdata_*/NAME` to `found`; returns whether `tmp` could be
/// listed.
fn scan_tmp(tmp: &Path, pid: i32, found: &mut Vec<Candidate>) -> bool {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return false;
    };
    let file_name = pid.to_string();
    for entry in entries.take(MAX_TMP_ENTRIES).flatten() {
        if !entry
            .file_name()
            .as_encoded_bytes()
            .starts_with(b"hsperfdata_")
        {
            continue;
        }
        let path = entry.path().join(&file_name);
        // symlink_metadata: a link is not the JVM's file (open refuses it too).
        if let Ok(meta) = std::fs::symlink_metadata(&path)
            && meta.file_type().is_file()
        {
            found.push(Candidate {
                path,
                uid: meta.uid(),
                mtime: meta.mtime(),
            });
        }
    }
    true
}

/// The flag that turned the file off, if the JVM's command line or its `JAVA_TOOL_OPTIONS`,
/// `JDK_JAVA_OPTIONS` or `_JAVA_OPTIONS` say so (the last mention of a flag wins, as in the
/// JVM: tool options, then the launcher's, then the command line, then `_JAVA_OPTIONS`).
fn disabled_flag(proc_dir: &Path) -> Option<&'static str> {
    let read = |name: &str| -> Vec<u8> {
        let mut out = Vec::new();
        if let Ok(f) = File::open(proc_dir.join(name)) {
            let _ = f.take(MAX_ARGS_BYTES).read_to_end(&mut out);
        }
        out
    };
    let cmdline = read("cmdline");
    let environ = read("environ");
    let env = |key: &str| -> Vec<String> {
        environ
            .split(|&b| b == 0)
            .filter_map(|kv| kv.strip_prefix(key.as_bytes())?.strip_prefix(b"="))
            .flat_map(|v| {
                String::from_utf8_lossy(v)
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let mut args = env("JAVA_TOOL_OPTIONS");
    args.extend(env("JDK_JAVA_OPTIONS"));
    args.extend(
        cmdline
            .split(|&b| b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned()),
    );
    args.extend(env("_JAVA_OPTIONS"));
    let mut use_perf_data = true;
    let mut disable_shared = false;
    for a in &args {
        match a.as_str() {
            "-XX:-UsePerfData" => use_perf_data = false,
            "-XX:+UsePerfData" => use_perf_data = true,
            "-XX:+PerfDisableSharedMem" => disable_shared = true,
            "-XX:-PerfDisableSharedMem" => disable_shared = false,
            _ => {}
        }
    }
    if !use_perf_data {
        Some("-XX:-UsePerfData")
    } else if disable_shared {
        Some("-XX:+PerfDisableSharedMem")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal little- or big-endian image: a prologue and `entries` of (name, value).
    fn image(big: bool, longs: &[(&str, i64)], strings: &[(&str, &str)]) -> Vec<u8> {
        let u32b = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let i64b = |v: i64| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut entries = Vec::new();
        let mut n = 0u32;
        let mut entry = |name: &str, ty: u8, units: u8, var: u8, data: Vec<u8>, vlen: u32| {
            let name_off = ENTRY_HEADER_LEN;
            let data_off = (name_off + name.len() + 1).next_multiple_of(8);
            let len = (data_off + data.len()).next_multiple_of(8);
            let mut e = vec![0u8; len];
            e[0..4].copy_from_slice(&u32b(len as u32));
            e[4..8].copy_from_slice(&u32b(name_off as u32));
            e[8..12].copy_from_slice(&u32b(vlen));
            e[12] = ty;
            e[14] = units;
            e[15] = var;
            e[16..20].copy_from_slice(&u32b(data_off as u32));
            e[name_off..name_off + name.len()].copy_from_slice(name.as_bytes());
            e[data_off..data_off + data.len()].copy_from_slice(&data);
            entries.extend(e);
            n += 1;
        };
        for (name, v) in longs {
            entry(name, b'J', 2, 3, i64b(*v).to_vec(), 0);
        }
        for (name, v) in strings {
            let mut d = v.as_bytes().to_vec();
            d.push(0);
            let l = d.len() as u32;
            entry(name, b'B', UNITS_STRING, 1, d, l);
        }
        let mut buf = vec![0u8; PROLOGUE_LEN];
        buf[..4].copy_from_slice(&MAGIC);
        buf[4] = if big { 0 } else { 1 };
        buf[5] = 2;
        buf[7] = 1;
        let used = (PROLOGUE_LEN + entries.len()) as u32;
        buf[8..12].copy_from_slice(&u32b(used));
        buf[16..24].copy_from_slice(&i64b(12345));
        buf[24..28].copy_from_slice(&u32b(PROLOGUE_LEN as u32));
        buf[28..32].copy_from_slice(&u32b(n));
        buf.extend(entries);
        buf.resize(4096, 0);
        buf
    }

    fn gc_image(big: bool, young: i64, old: i64, full: i64) -> Vec<u8> {
        image(
            big,
            &[
                ("sun.os.hrt.frequency", 1_000_000_000),
                ("sun.os.hrt.ticks", 5_000_000_000),
                ("sun.gc.generation.0.capacity", 100),
                ("sun.gc.generation.0.space.0.used", young),
                ("sun.gc.generation.0.space.1.used", 1),
                ("sun.gc.generation.1.capacity", 1000),
                ("sun.gc.generation.1.space.0.used", old),
                ("sun.gc.collector.0.invocations", 7),
                ("sun.gc.collector.0.time", 2_500_000_000),
                ("sun.gc.collector.1.invocations", full),
                ("sun.gc.collector.1.time", 500_000_000),
                ("sun.gc.metaspace.used", 42),
            ],
            &[
                ("sun.gc.generation.0.name", "young"),
                ("sun.gc.generation.1.name", "old"),
                ("sun.gc.collector.0.name", "G1 young collection pauses"),
                ("sun.gc.collector.1.name", "G1 full collection pauses"),
                ("sun.rt.javaCommand", "Main arg"),
            ],
        )
    }

    #[test]
    fn hsperf_parses_both_byte_orders_alike() {
        for big in [false, true] {
            let d = parse(&gc_image(big, 10, 300, 2)).expect("valid image");
            assert_eq!(d.header.big_endian, big);
            assert_eq!(d.header.num_entries, 17);
            assert_eq!(d.long("sun.gc.metaspace.used"), Some(42));
            assert_eq!(d.string("sun.rt.javaCommand"), Some("Main arg"));
            assert_eq!(d.long("sun.rt.javaCommand"), None);
            let gc = d.gc();
            assert_eq!(gc.heap_used_bytes, Some(311));
            assert_eq!(gc.heap_committed_bytes, Some(1100));
            assert_eq!(gc.old_used_bytes, Some(300));
            assert_eq!(gc.uptime_s, Some(5.0));
            assert_eq!(gc.collectors[0].kind, CollectorKind::Young);
            assert_eq!(gc.collectors[0].time_s, Some(2.5));
            assert_eq!(gc.collectors[1].kind, CollectorKind::Full);
            assert_eq!(gc.full_invocations(), Some(2));
            assert_eq!(gc.total_invocations(), Some(9));
            assert_eq!(gc.total_gc_time_s(), Some(3.0));
        }
    }

    #[test]
    fn hsperf_header_errors_are_typed() {
        let good = gc_image(false, 1, 2, 3);
        let with = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut b = good.clone();
            f(&mut b);
            parse(&b).err().map(|e| e.to_string()).unwrap_or_default()
        };
        assert!(with(&|b| b.truncate(31)).contains("truncated"));
        assert!(with(&|b| b[0] = 0xcb).contains("magic 0xcbfec0c0"));
        assert!(with(&|b| b[..4].fill(0)).contains("not ready"));
        assert!(with(&|b| b[7] = 0).contains("not ready"));
        assert!(with(&|b| b[4] = 9).contains("byte order 9"));
        assert!(with(&|b| b[5] = 1).contains("version 1.0"));
        assert!(with(&|b| b[8..12].copy_from_slice(&u32::MAX.to_le_bytes())).contains("truncated"));
        assert!(with(&|b| b[8..12].copy_from_slice(&8u32.to_le_bytes())).contains("less than"));
        assert!(with(&|b| b[24..28].copy_from_slice(&u32::MAX.to_le_bytes())).contains("outside"));
        assert!(with(&|b| b[28..32].copy_from_slice(&u32::MAX.to_le_bytes())).contains("bound"));
        assert!(with(&|b| b[28..32].copy_from_slice(&200u32.to_le_bytes())).contains("entry 17"));
        assert!(with(&|b| b[32..36].fill(0)).contains("entry 0 at byte 32"));
        assert!(parse(&vec![0; MAX_FILE_BYTES + 1]).is_err());
    }

    #[test]
    fn hsperf_bad_entries_are_skipped() {
        let good = gc_image(false, 1, 2, 3);
        let mut b = good.clone();
        // First entry: name offset past its end; second: data offset past its end.
        b[36..40].copy_from_slice(&10_000u32.to_le_bytes());
        let second = 32 + u32::from_le_bytes([b[32], b[33], b[34], b[35]]) as usize;
        b[second + 16..second + 20].copy_from_slice(&u32::MAX.to_le_bytes());
        let d = parse(&b).expect("the table can still be walked");
        assert_eq!(d.skipped, 2);
        assert_eq!(d.long("sun.os.hrt.frequency"), None);
        assert_eq!(d.long("sun.gc.metaspace.used"), Some(42));
        assert_eq!(d.gc().uptime_s, None);
    }

    #[test]
    fn hsperf_refresh_reads_values_in_place_and_reparses_on_growth() {
        let mut d = parse(&gc_image(true, 1, 2, 3)).expect("valid");
        assert_eq!(d.refresh(&gc_image(true, 5, 6, 7)), Ok(false));
        assert_eq!(d.gc().old_used_bytes, Some(6));
        assert_eq!(d.gc().full_invocations(), Some(7));
        // A different table (an entry added) is parsed anew.
        let grown = image(true, &[("a.b", 1), ("c.d", 2)], &[]);
        assert_eq!(d.refresh(&grown), Ok(true));
        assert_eq!(d.long("c.d"), Some(2));
        // A torn read leaves the last values.
        assert!(d.refresh(&grown[..40]).is_err());
        assert_eq!(d.long("c.d"), Some(2));
    }

    impl PartialEq for HsperfError {
        fn eq(&self, other: &Self) -> bool {
            self.to_string() == other.to_string()
        }
    }

    #[test]
    fn hsperf_collector_kinds() {
        use CollectorKind::*;
        for (name, kind) in [
            ("G1 young collection pauses", Young),
            ("G1 full collection pauses", Full),
            ("G1 concurrent cycle pauses", Concurrent),
            ("Serial young collection pauses", Young),
            ("Parallel full collection pauses", Full),
            ("Shenandoah full", Full),
            ("Shenandoah partial", Young),
            ("Z concurrent cycle pauses", Concurrent),
            ("Copy", Young),
            ("MSC", Full),
            ("PSScavenge", Young),
            ("PSParallelCompact", Full),
            ("G1 incremental collections", Young),
            ("G1 stop-the-world full collections", Full),
            ("CMS", Concurrent),
            ("", Other),
        ] {
            assert_eq!(CollectorKind::from_name(name), kind, "{name}");
        }
    }

    fn summary(t: i64, old: u64, full: Option<u64>) -> JvmGc {
        JvmGc {
            uptime_s: None,
            hrt_ticks: Some(t),
            generations: Vec::new(),
            heap_used_bytes: None,
            heap_committed_bytes: None,
            old_used_bytes: Some(old),
            old_committed_bytes: None,
            metaspace_used_bytes: None,
            metaspace_committed_bytes: None,
            class_space_used_bytes: None,
            collectors: full
                .map(|n| CollectorGc {
                    index: 1,
                    name: "G1 full collection pauses".into(),
                    kind: CollectorKind::Full,
                    invocations: Some(n),
                    time_s: None,
                })
                .into_iter()
                .collect(),
            threads_live: None,
            classes_loaded: None,
            last_gc_cause: None,
        }
    }

    /// Feeds (old used, full count) at t = 0, 1, 2 …; returns (t, bytes, cause) of the points.
    fn points(series: &[(u64, Option<u64>)]) -> Vec<(f64, u64, LiveCause)> {
        let mut tr = LiveSetTracker::new();
        let mut out = Vec::new();
        for (i, &(old, full)) in series.iter().enumerate() {
            if let Some(p) = tr.observe(i as f64, &summary(i as i64, old, full)) {
                out.push((p.t_s, p.old_used_bytes, p.cause));
            }
        }
        out.extend(tr.flush().map(|p| (p.t_s, p.old_used_bytes, p.cause)));
        out
    }

    #[test]
    fn hsperf_live_set_is_the_floor_of_each_reclaim() {
        use LiveCause::*;
        // Promotion only: no collection of old space, no point.
        assert_eq!(
            points(&[(10, Some(0)), (20, Some(0)), (30, Some(0))]),
            vec![]
        );
        // A G1 mixed phase over three samples (50 → 40 → 35), then promotion again: one point,
        // the floor, taken at the sample it was read.
        assert_eq!(
            points(&[
                (50, Some(0)),
                (40, Some(0)),
                (35, Some(0)),
                (36, Some(0)),
                (38, Some(0))
            ]),
            vec![(2.0, 35, OldDrop)]
        );
        // Two full collections with data retained in between: two points, the second higher.
        assert_eq!(
            points(&[
                (10, Some(0)),
                (8, Some(1)),
                (8, Some(1)),
                (30, Some(2)),
                (31, Some(2))
            ]),
            vec![(1.0, 8, FullGc), (3.0, 30, FullGc)]
        );
        // Back-to-back full collections that keep shrinking stay one episode.
        assert_eq!(
            points(&[(10, Some(0)), (8, Some(1)), (6, Some(2)), (7, Some(2))]),
            vec![(2.0, 6, FullGc)]
        );
        // ZGC: no full collector; drops alone.
        assert_eq!(
            points(&[
                (50, None),
                (60, None),
                (20, None),
                (70, None),
                (25, None),
                (25, None)
            ]),
            vec![(2.0, 20, OldDrop), (4.0, 25, OldDrop)]
        );
        // An episode still open at the end is flushed.
        assert_eq!(
            points(&[(50, Some(0)), (40, Some(0))]),
            vec![(1.0, 40, OldDrop)]
        );
    }

    #[test]
    fn hsperf_live_set_restarts_with_a_new_jvm() {
        let mut tr = LiveSetTracker::new();
        assert_eq!(tr.observe(0.0, &summary(100, 50, Some(3))), None);
        assert_eq!(tr.observe(1.0, &summary(200, 40, Some(4))), None);
        // Ticks went back: another JVM. The open episode is closed, the new JVM's first sample
        // (lower old use, lower full count) is not a drop.
        let p = tr.observe(2.0, &summary(10, 5, Some(0)));
        assert_eq!(p.map(|p| p.old_used_bytes), Some(40));
        assert_eq!(tr.observe(3.0, &summary(20, 6, Some(0))), None);
        assert_eq!(tr.flush(), None);
    }

    #[test]
    fn hsperf_status_fields() {
        let s = "Name:\tjava\nUid:\t1000\t1001\t1001\t1001\nNSpid:\t4242\t7\n";
        assert_eq!(parse_status(s, 4242), (7, Some(1001)));
        assert_eq!(parse_status("Name:\tx\n", 9), (9, None));
    }
}
