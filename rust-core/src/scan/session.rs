//! A scan session for camera streams: feed frames, get each new code once.
//!
//! - A code seen in consecutive frames is reported once. It is reported again only after it
//!   has been out of view for more than `forget_after` scanned frames.
//! - Frames fed while another frame is being scanned (from another thread) are dropped at
//!   once, so a camera callback never queues up work.
//! - The retry ladder may be spread over frames (`ladder_per_frame`): each frame gets the
//!   first pass and the next few retry steps in turn, so a frame with no code costs little and
//!   every step still runs within a few frames. The default is measured by the camera-stream
//!   benchmark (docs/scanning.md).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use super::{
    ladder_len, readers::ladder, scan_order, Code, Frame, LookAgain, ScanError, ScanOptions,
    MULTI_MIN,
};

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
    per_frame: usize,
    cursor: AtomicUsize,
    /// The ladder step that last read a code, plus one (0: none): tried first on the next
    /// frame, since a stream's light, blur and angle change slowly.
    last_good: AtomicUsize,
}

/// Retry steps a session runs per frame by default (see docs/scanning.md, camera streams).
pub const LADDER_PER_FRAME: usize = 2;

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
            per_frame: LADDER_PER_FRAME,
            cursor: AtomicUsize::new(0),
            last_good: AtomicUsize::new(0),
        }
    }

    /// Run at most `steps` retry steps per frame, taking the ladder in turn across frames
    /// (`usize::MAX`: the whole ladder on every frame, as `scan` does).
    pub fn ladder_per_frame(mut self, steps: usize) -> Self {
        self.per_frame = steps;
        self
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
        let len = ladder_len();
        let mut order: Vec<usize> = Vec::with_capacity(len);
        if let Some(k) = self.last_good.load(Ordering::Relaxed).checked_sub(1) {
            order.push(k);
        }
        if self.per_frame >= len {
            let first = order.first().copied();
            order.extend((0..len).filter(|k| Some(*k) != first));
        } else if len > 0 {
            // The next steps in turn (not counting the sticky one), passing over steps that
            // cannot run on a frame of this size.
            let ladder = ladder();
            let (mut taken, mut looked) = (0, 0);
            while taken < self.per_frame && looked < len {
                let k = self.cursor.fetch_add(1, Ordering::Relaxed) % len;
                looked += 1;
                if !ladder[k].applies(frame.width, frame.height) {
                    continue;
                }
                if !order.contains(&k) {
                    order.push(k);
                }
                taken += 1;
            }
        }
        let look = LookAgain {
            codes: MULTI_MIN,
            first_pass_codes: MULTI_MIN,
            unexplained: usize::MAX,
            crops: 0,
        };
        let (codes, by) = scan_order(frame, &self.opts, &order, look)?;
        if let Some(k) = by {
            self.last_good.store(k + 1, Ordering::Relaxed);
        }
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

    /// The payloads of every code in the last scanned frame, new or not (for an overlay, or to
    /// count frames read).
    pub fn in_view(&self) -> Vec<Vec<u8>> {
        let n = self.frames.load(Ordering::Relaxed);
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.iter()
            .filter(|s| s.last_frame == n)
            .map(|s| s.bytes.clone())
            .collect()
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
