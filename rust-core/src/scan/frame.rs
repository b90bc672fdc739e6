//! Frames: borrowed 8-bit luma with a row stride, and the rotation the camera reports.

use super::{ScanError, MAX_PIXELS};

/// How the camera reports the frame is rotated (clockwise) relative to the upright scene.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rotation {
    #[default]
    R0,
    R90,
    R180,
    R270,
}

impl Rotation {
    /// From degrees (0, 90, 180, 270; others are refused).
    pub fn from_degrees(d: i32) -> Option<Self> {
        match d.rem_euclid(360) {
            0 => Some(Rotation::R0),
            90 => Some(Rotation::R90),
            180 => Some(Rotation::R180),
            270 => Some(Rotation::R270),
            _ => None,
        }
    }

    /// Map a point of a `w`×`h` frame to the upright image (rotated clockwise by this).
    pub fn to_upright(self, x: f32, y: f32, w: f32, h: f32) -> (f32, f32) {
        match self {
            Rotation::R0 => (x, y),
            Rotation::R90 => (h - y, x),
            Rotation::R180 => (w - x, h - y),
            Rotation::R270 => (y, w - x),
        }
    }
}

/// A luma frame: `height` rows of `width` pixels, each row starting `stride` bytes after the
/// previous one (an Android `YUV_420_888` Y plane has `stride >= width`). Borrowed, not copied.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    pub width: usize,
    pub height: usize,
    pub stride: usize,
    pub pixels: &'a [u8],
    pub rotation: Rotation,
}

impl<'a> Frame<'a> {
    pub fn new(
        width: usize,
        height: usize,
        stride: usize,
        pixels: &'a [u8],
        rotation: Rotation,
    ) -> Self {
        Frame {
            width,
            height,
            stride,
            pixels,
            rotation,
        }
    }

    /// The Y plane of an Android `YUV_420_888` image: the plane's buffer, its row stride and
    /// pixel stride (which must be 1 for Y), and the image size.
    pub fn from_y_plane(
        buffer: &'a [u8],
        width: usize,
        height: usize,
        row_stride: usize,
        pixel_stride: usize,
        rotation: Rotation,
    ) -> Result<Self, ScanError> {
        if pixel_stride != 1 {
            return Err(ScanError::Stride {
                stride: pixel_stride,
                width: 1,
            });
        }
        let f = Frame::new(width, height, row_stride, buffer, rotation);
        f.validate()?;
        Ok(f)
    }

    /// Check sizes: non-empty, stride ≥ width, buffer long enough (the last row may end at
    /// `width`), at most [`MAX_PIXELS`].
    pub fn validate(&self) -> Result<(), ScanError> {
        if self.width == 0 || self.height == 0 {
            return Err(ScanError::Empty);
        }
        if self.stride < self.width {
            return Err(ScanError::Stride {
                stride: self.stride,
                width: self.width,
            });
        }
        let pixels = self
            .width
            .checked_mul(self.height)
            .ok_or(ScanError::TooLarge { pixels: usize::MAX })?;
        if pixels > MAX_PIXELS {
            return Err(ScanError::TooLarge { pixels });
        }
        let need = self
            .stride
            .checked_mul(self.height - 1)
            .and_then(|n| n.checked_add(self.width))
            .ok_or(ScanError::TooLarge { pixels })?;
        if self.pixels.len() < need {
            return Err(ScanError::Truncated {
                len: self.pixels.len(),
                need,
            });
        }
        Ok(())
    }

    /// The pixel buffer (call after `validate`).
    pub(crate) fn rows(&self) -> &'a [u8] {
        self.pixels
    }
}
