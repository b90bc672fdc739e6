//! The camera-stream generator: deterministic sequences of Y-plane frames (720p and 1080p,
//! with row padding) showing a voucher's QR code the way a provider's phone sees it. Same
//! arguments, same bytes: every decoder in the benchmark gets identical frames, and nothing
//! is checked in.
//!
//! Each sequence is `FRAMES` frames of one scene. Within a sequence the code drifts a little
//! (a hand-held voucher) and the difficulty eases from the first frame to the last (the hand
//! steadies, the phone focuses, the user tilts the voucher toward the light), so "frames until
//! the first read" measures how soon a decoder copes.

/// Frames per sequence.
pub const FRAMES: usize = 20;

/// The scenes, each a way a phone's view of a voucher goes wrong, and `empty`: the same
/// paper printed with lines of text and no code (the frames a phone scans between vouchers:
/// what they cost, and that nothing is read from them).
pub const SCENES: [&str; 9] = [
    "empty",
    "steady",
    "motion",
    "defocus",
    "perspective",
    "lowlight",
    "glare",
    "screen",
    "jpeg",
];

/// The two resolutions a phone's preview stream gives (width, height, row stride).
pub const RESOLUTIONS: [(&str, usize, usize, usize); 2] =
    [("720p", 1280, 720, 1344), ("1080p", 1920, 1080, 1984)];

/// A small deterministic generator (SplitMix64).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
    /// Approximately normal (sum of four uniforms), mean 0, standard deviation 1.
    pub fn normal(&mut self) -> f32 {
        (self.unit() + self.unit() + self.unit() + self.unit() - 2.0) * 1.732
    }
}

/// A frame: `stride * height` bytes, the Y plane.
pub struct Frame {
    pub width: usize,
    pub height: usize,
    pub stride: usize,
    pub y: Vec<u8>,
}

/// Homography mapping the unit square onto a quadrilateral (corners in order: (0,0), (1,0),
/// (1,1), (0,1)), inverted: frame point to unit-square point.
struct Inverse([f32; 9]);

impl Inverse {
    fn from_quad(q: [(f32, f32); 4]) -> Self {
        // Square-to-quad (Heckbert), then the adjugate as the inverse.
        let (x0, y0) = q[0];
        let (x1, y1) = q[1];
        let (x2, y2) = q[2];
        let (x3, y3) = q[3];
        let dx3 = x0 - x1 + x2 - x3;
        let dy3 = y0 - y1 + y2 - y3;
        let (dx1, dx2, dy1, dy2) = (x1 - x2, x3 - x2, y1 - y2, y3 - y2);
        let den = dx1 * dy2 - dx2 * dy1;
        let g = (dx3 * dy2 - dx2 * dy3) / den;
        let h = (dx1 * dy3 - dx3 * dy1) / den;
        let (a, b, c) = (x1 - x0 + g * x1, x3 - x0 + h * x3, x0);
        let (d, e, f) = (y1 - y0 + g * y1, y3 - y0 + h * y3, y0);
        // Forward: [a b c; d e f; g h 1]. Inverse by adjugate.
        let m = [
            e - f * h,
            c * h - b,
            b * f - c * e,
            f * g - d,
            a - c * g,
            c * d - a * f,
            d * h - e * g,
            b * g - a * h,
            a * e - b * d,
        ];
        Inverse(m)
    }
    fn map(&self, x: f32, y: f32) -> (f32, f32) {
        let m = &self.0;
        let z = m[6] * x + m[7] * y + m[8];
        (
            (m[0] * x + m[1] * y + m[2]) / z,
            (m[3] * x + m[4] * y + m[5]) / z,
        )
    }
}

/// One frame of a scene. `t` runs from 0 (first frame, hardest) to 1 (last, easiest).
pub fn frame(
    scene: &str,
    res: (usize, usize, usize),
    modules: &[bool],
    n: usize,
    i: usize,
    seed: u64,
) -> Frame {
    let (w, h, stride) = res;
    let t = i as f32 / (FRAMES - 1) as f32;
    let k = h as f32 / 720.0; // effects scale with resolution
    let mut rng = Rng::new(seed ^ (i as u64).wrapping_mul(0x1234_5678_9ABC_DEF1));

    // Lighting and ink.
    let (mut paper, mut ink) = (205.0f32, 35.0f32);
    if scene == "lowlight" {
        let lift = 1.0 + 0.8 * t;
        paper = 34.0 * lift;
        ink = 10.0 * lift;
    }
    if scene == "screen" {
        paper = 235.0;
        ink = 45.0;
    }

    // Placement: the code (with a 4-module quiet zone) takes ~62 % of the frame height,
    // drifting a few pixels per frame.
    let side = 0.62 * h as f32;
    let (cx, cy) = (
        w as f32 / 2.0 + (i as f32 * 0.9).sin() * 14.0 * k,
        h as f32 / 2.0 + (i as f32 * 0.7).cos() * 10.0 * k,
    );
    let rot: f32 = match scene {
        "perspective" => (28.0 - 14.0 * t).to_radians(),
        _ => (4.0 + (i as f32 * 0.5).sin() * 3.0).to_radians(),
    };
    // Perspective: the far edge shorter (tilted about the horizontal axis).
    let far = if scene == "perspective" {
        0.50 + 0.35 * t
    } else {
        0.97
    };
    let half = side / 2.0;
    let local = [
        (-half * far, -half),
        (half * far, -half),
        (half, half),
        (-half, half),
    ];
    let (sn, cs) = rot.sin_cos();
    let quad = local.map(|(x, y)| (cx + x * cs - y * sn, cy + x * sn + y * cs));
    let inv = Inverse::from_quad(quad);

    let total = (n + 8) as f32; // modules across, with quiet zones
    let mut y_plane = vec![0u8; stride * h];
    let mut buf = vec![0f32; w * h];
    // Background: a desk, light falling off to one side, with fine texture.
    for y in 0..h {
        for x in 0..w {
            let g = 95.0 + 40.0 * (x as f32 / w as f32) - 20.0 * (y as f32 / h as f32);
            buf[y * w + x] = g * if scene == "lowlight" {
                paper / 205.0
            } else {
                1.0
            };
        }
    }
    // The voucher: 2×2 supersampling inside the quad's bounding box.
    let (minx, maxx) = quad
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (miny, maxy) = quad
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let x0 = (minx.floor().max(0.0)) as usize;
    let x1 = (maxx.ceil().min(w as f32 - 1.0)) as usize;
    let y0 = (miny.floor().max(0.0)) as usize;
    let y1 = (maxy.ceil().min(h as f32 - 1.0)) as usize;
    for y in y0..=y1 {
        for x in x0..=x1 {
            let mut acc = 0.0;
            let mut inside = 0;
            for (ox, oy) in [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)] {
                let (u, v) = inv.map(x as f32 + ox, y as f32 + oy);
                if !(0.0..1.0).contains(&u) || !(0.0..1.0).contains(&v) {
                    continue;
                }
                inside += 1;
                let (mu, mv) = ((u * total) as isize - 4, (v * total) as isize - 4);
                let dark = if scene == "empty" {
                    // Lines of "words": dark bars two modules apart, broken at random.
                    let (fu, fv) = (u * total * 2.0, v * total * 2.0);
                    let line = fv as usize;
                    let word = (fu / 9.0) as u64 ^ ((line as u64) << 20);
                    fu > 8.0
                        && fu < total * 2.0 - 8.0
                        && fv > 8.0
                        && fv < total * 2.0 - 8.0
                        && line % 3 == 0
                        && fv.fract() > 0.3
                        && Rng::new(word).next() % 5 != 0
                        && (fu / 9.0).fract() < 0.85
                        && Rng::new(word ^ (fu as u64)).next() % 3 != 0
                } else {
                    mu >= 0
                        && mv >= 0
                        && (mu as usize) < n
                        && (mv as usize) < n
                        && modules[mv as usize * n + mu as usize]
                };
                // Light falls off across the paper too.
                let shade = 1.0 - 0.18 * u + 0.06 * v;
                acc += if dark { ink } else { paper * shade };
            }
            if inside > 0 {
                let b = buf[y * w + x];
                buf[y * w + x] = (acc + b * (4 - inside) as f32) / 4.0;
            }
        }
    }

    match scene {
        "screen" => {
            // A phone screen showing the code: a pixel grid with dark gaps (period ~3.1 px,
            // slightly turned to the camera's grid: moiré), a dim bezel, a faint reflection.
            let period = 3.1 * k * (1.0 + 0.15 * (1.0 - t));
            let (sa, ca) = (0.05f32.sin(), 0.05f32.cos());
            for y in y0..=y1 {
                for x in x0..=x1 {
                    let (fx, fy) = (
                        x as f32 * ca + y as f32 * sa,
                        -(x as f32) * sa + y as f32 * ca,
                    );
                    let gx = (fx / period).fract();
                    let gy = (fy / period).fract();
                    let gap = if gx < 0.22 || gy < 0.22 { 0.62 } else { 1.0 };
                    let refl = 18.0 * (1.0 - t) * ((x as f32 / w as f32) * 3.0).sin().max(0.0);
                    buf[y * w + x] = buf[y * w + x] * gap + refl;
                }
            }
        }
        "glare" => {
            // A bright spot, saturating, moving from the middle of the code to its edge.
            let (gx, gy) = (cx + (t * 0.45 * side), cy - 0.1 * side);
            let r = (0.22 - 0.08 * t) * side;
            for y in y0..=y1 {
                for x in x0..=x1 {
                    let d = ((x as f32 - gx).powi(2) + (y as f32 - gy).powi(2)).sqrt() / r;
                    if d < 1.6 {
                        let a = (1.6 - d).min(1.0);
                        buf[y * w + x] = buf[y * w + x] * (1.0 - a) + 255.0 * a + 60.0 * a;
                    }
                }
            }
        }
        _ => {}
    }

    // Optics and motion.
    match scene {
        "motion" => box_h(&mut buf, w, h, ((34.0 - 30.0 * t) * k) as usize),
        "defocus" => {
            let r = ((7.0 - 6.0 * t) * k) as usize;
            for _ in 0..3 {
                box_h(&mut buf, w, h, 2 * r + 1);
                box_v(&mut buf, w, h, 2 * r + 1);
            }
        }
        _ => {
            // Every lens blurs a little.
            box_h(&mut buf, w, h, 2);
            box_v(&mut buf, w, h, 2);
        }
    }

    // Sensor noise: always some, a lot in low light.
    let sigma = if scene == "lowlight" {
        9.0 - 4.0 * t
    } else {
        2.0
    };
    for y in 0..h {
        for x in 0..w {
            let v = buf[y * w + x] + sigma * rng.normal();
            y_plane[y * stride + x] = v.clamp(0.0, 255.0) as u8;
        }
        // Row padding holds junk, as a camera's buffer may.
        for p in &mut y_plane[y * stride + w..(y + 1) * stride] {
            *p = (rng.next() & 0xff) as u8;
        }
    }

    if scene == "jpeg" {
        let q = (8.0 + 27.0 * t) as u8;
        y_plane = jpeg_round_trip(&y_plane, w, h, stride, q);
    }
    Frame {
        width: w,
        height: h,
        stride,
        y: y_plane,
    }
}

/// Horizontal box blur of length `len` (motion along the rows).
fn box_h(buf: &mut [f32], w: usize, h: usize, len: usize) {
    if len <= 1 {
        return;
    }
    let mut row = vec![0f32; w];
    for y in 0..h {
        let r = &mut buf[y * w..(y + 1) * w];
        let mut acc = 0.0;
        for x in 0..w {
            acc += r[x];
            if x >= len {
                acc -= r[x - len];
            }
            row[x] = acc / (x + 1).min(len) as f32;
        }
        // Centre the kernel.
        let shift = len / 2;
        for x in 0..w {
            r[x] = row[(x + shift).min(w - 1)];
        }
    }
}

/// Vertical box blur of length `len`.
fn box_v(buf: &mut [f32], w: usize, h: usize, len: usize) {
    if len <= 1 {
        return;
    }
    let mut col = vec![0f32; h];
    for x in 0..w {
        let mut acc = 0.0;
        for y in 0..h {
            acc += buf[y * w + x];
            if y >= len {
                acc -= buf[(y - len) * w + x];
            }
            col[y] = acc / (y + 1).min(len) as f32;
        }
        let shift = len / 2;
        for y in 0..h {
            buf[y * w + x] = col[(y + shift).min(h - 1)];
        }
    }
}

/// Encode the Y plane as a JPEG at `quality` and decode it back (the artefacts of a
/// compressed preview or a forwarded photo).
fn jpeg_round_trip(y: &[u8], w: usize, h: usize, stride: usize, quality: u8) -> Vec<u8> {
    let mut compact = Vec::with_capacity(w * h);
    for row in 0..h {
        compact.extend_from_slice(&y[row * stride..row * stride + w]);
    }
    let mut jpg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpg, quality)
        .encode(&compact, w as u32, h as u32, image::ExtendedColorType::L8)
        .expect("jpeg encode");
    let back = image::load_from_memory(&jpg)
        .expect("jpeg decode")
        .into_luma8();
    let mut out = y.to_vec();
    for row in 0..h {
        out[row * stride..row * stride + w].copy_from_slice(&back.as_raw()[row * w..(row + 1) * w]);
    }
    out
}
