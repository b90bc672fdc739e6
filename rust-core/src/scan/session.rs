//! A scan session for camera streams: feed frames, get each new code once.
//!
//! - A code seen in consecutive frames is reported once. It is reported again only after it
//!   has been out of view for more than `forget_after` scanned frames.
//! - Frames fed while another frame is being scanned (from another thread) are dropped at
//!   once, so a camera callback never queues up work.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use super::{scan, Code, Frame, ScanError, ScanOptions};

/// What `feed` did with a frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Fed {
    /// Scanned: the codes not reported before (possibly none).
    New(Vec<Code>),
    /// Dropped: another frame was being scanned.
    Dropped,
}

struct Seen {
    bytes: Vec<u8>,
    last_frame: u64,
}

/// A camera scan session. `Send + Sync`.
pub struct ScanSession {
    opts: ScanOptions,
    forget_after: u64,
    busy: AtomicBool,
    frames: AtomicU64,
    dropped: AtomicU64,
    seen: Mutex<Vec<Seen>>,
}

impl ScanSession {
    /// A session; a code out of view for `forget_after` scanned frames may be reported again.
    pub fn new(opts: ScanOptions, forget_after: u64) -> Self {
        ScanSession {
            opts,
            forget_after: forget_after.max(1),
            busy: AtomicBool::new(false),
            frames: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            seen: Mutex::new(Vec::new()),
        }
    }

    /// Scan a frame unless one is already being scanned.
    pub fn feed(&self, frame: &Frame<'_>) -> Result<Fed, ScanError> {
        if self
            .busy
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return Ok(Fed::Dropped);
        }
        struct Release<'a>(&'a AtomicBool);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        let _release = Release(&self.busy);
        let n = self.frames.fetch_add(1, Ordering::Relaxed) + 1;
        let codes = scan(frame, &self.opts)?;
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let mut new = Vec::new();
        for c in codes {
            match seen.iter_mut().find(|s| s.bytes == c.bytes) {
                Some(s) => {
                    let missed = n - s.last_frame - 1;
                    s.last_frame = n;
                    if missed > self.forget_after {
                        new.push(c);
                    }
                }
                None => {
                    seen.push(Seen {
                        bytes: c.bytes.clone(),
                        last_frame: n,
                    });
                    new.push(c);
                }
            }
        }
        // Forget codes long out of view so memory stays bounded.
        let horizon = self.forget_after;
        seen.retain(|s| n - s.last_frame <= horizon + 1);
        Ok(Fed::New(new))
    }

    /// Frames scanned so far.
    pub fn frames_scanned(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }

    /// Frames dropped because a scan was running.
    pub fn frames_dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}
