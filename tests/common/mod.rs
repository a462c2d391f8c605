//! Helpers shared by the end-to-end tests (each test file uses some of them).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// The leak-sentinel binary under test.
pub fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("leak-sentinel")
}

/// `leak-sentinel --state-dir STATE …`.
pub fn ls(state: &Path) -> Command {
    let mut c = Command::new(bin());
    c.arg("--state-dir").arg(state);
    c
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Kills a server the test started when the test ends, even on failure.
pub struct Kill(pub Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
