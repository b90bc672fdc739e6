import boofcv.abst.fiducial.QrCodeDetector;
import boofcv.alg.fiducial.qrcode.QrCode;
import boofcv.factory.fiducial.FactoryFiducial;
import boofcv.struct.image.GrayU8;
import georegression.struct.point.Point2D_F64;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.Charset;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;

/**
 * Peer for scripts/bench-scan.sh: BoofCV 1.1.7's default QR detector
 * ({@code FactoryFiducial.qrcode(null, GrayU8.class)}) on the images listed on standard input
 * as "PGM<TAB>ORIGINAL" lines ({@code scan_eval --grey DIR}: the very grey pixels our scanner
 * gets, since ImageIO reads no WebP), one JSON line per image in the shape of scan_eval's:
 * {"file": ORIGINAL, "codes": [{"text", "bytes_b64", "centre"}], "ms"}. Only {@code process}
 * is timed. The JIT is warmed on the first 40 images before timing starts.
 */
public final class BoofcvScan {
    static final int REPEAT =
            Math.max(1, Integer.parseInt(System.getenv().getOrDefault("EVOUCHER_BENCH_REPEAT", "1")));

    public static void main(String[] args) throws Exception {
        List<String> files = new ArrayList<>();
        List<String> names = new ArrayList<>();
        try (BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
            for (String line; (line = in.readLine()) != null; ) {
                String[] f = line.split("\t", 2);
                if (f.length == 2) {
                    files.add(f[0]);
                    names.add(f[1]);
                }
            }
        }
        QrCodeDetector<GrayU8> detector = FactoryFiducial.qrcode(null, GrayU8.class);
        // Warm-up: the first 40 images, untimed, results thrown away.
        for (int i = 0; i < Math.min(40, files.size()); i++) {
            GrayU8 g = grey(files.get(i));
            if (g != null) detector.process(g);
        }
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < files.size(); i++) {
            String path = names.get(i);
            GrayU8 g = grey(files.get(i));
            double ms = 0;
            List<String> codes = new ArrayList<>();
            if (g != null) {
                // EVOUCHER_BENCH_REPEAT decodes: the fastest is kept (a noisy machine), the
                // detections of the last are reported (BoofCV is deterministic).
                ms = Double.MAX_VALUE;
                for (int r = 0; r < REPEAT; r++) {
                    long t = System.nanoTime();
                    detector.process(g);
                    ms = Math.min(ms, (System.nanoTime() - t) / 1e6);
                }
                for (QrCode qr : detector.getDetections()) {
                    if (qr.message == null) continue;
                    Charset cs = StandardCharsets.UTF_8;
                    try {
                        if (qr.byteEncoding != null && !qr.byteEncoding.isEmpty()) cs = Charset.forName(qr.byteEncoding);
                    } catch (Exception e) {
                        cs = StandardCharsets.UTF_8;
                    }
                    byte[] bytes = qr.message.getBytes(cs);
                    double cx = 0, cy = 0;
                    int n = qr.bounds.size();
                    for (int k = 0; k < n; k++) {
                        Point2D_F64 p = qr.bounds.get(k);
                        cx += p.x;
                        cy += p.y;
                    }
                    codes.add("{\"text\":" + json(qr.message) + ",\"bytes_b64\":\""
                            + Base64.getEncoder().encodeToString(bytes) + "\",\"centre\":["
                            + (n > 0 ? cx / n : -1) + "," + (n > 0 ? cy / n : -1) + "]}");
                }
            }
            out.setLength(0);
            out.append("{\"file\":").append(json(path)).append(",\"codes\":[")
                    .append(String.join(",", codes)).append("],\"ms\":").append(ms).append('}');
            System.out.println(out);
        }
    }

    /** A binary PGM (P5, 8-bit) as written by scan_eval --grey, or null if unreadable. */
    static GrayU8 grey(String path) {
        byte[] b;
        try {
            b = Files.readAllBytes(Path.of(path));
        } catch (Exception e) {
            return null;
        }
        // Header: "P5\n<w> <h>\n255\n".
        int pos = 0;
        String[] tok = new String[4];
        for (int t = 0; t < 4; t++) {
            StringBuilder sb = new StringBuilder();
            while (pos < b.length && Character.isWhitespace(b[pos])) pos++;
            while (pos < b.length && !Character.isWhitespace(b[pos])) sb.append((char) b[pos++]);
            tok[t] = sb.toString();
        }
        pos++;
        if (!"P5".equals(tok[0])) return null;
        int w = Integer.parseInt(tok[1]), h = Integer.parseInt(tok[2]);
        if (b.length - pos < w * h) return null;
        GrayU8 g = new GrayU8(w, h);
        System.arraycopy(b, pos, g.data, 0, w * h);
        return g;
    }

    static String json(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> b.append("\\\"");
                case '\\' -> b.append("\\\\");
                default -> {
                    if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
                    else b.append(c);
                }
            }
        }
        return b.append('"').toString();
    }
}
