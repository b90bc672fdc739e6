"""Peer for scripts/bench-scan.sh: zxing-cpp (PyPI `zxing-cpp`) on the same images, timing the
read call only (image loaded and converted to 8-bit grey first, as our side does), one JSON
line per image in the same shape as `scan_eval`: {"file", "codes": [{"text", "bytes_b64",
"centre"}], "ms"}. QR codes only (Micro QR and rMQR are other symbologies). Reads the list of
files from standard input. EVOUCHER_BENCH_REPEAT=N decodes each image N times and reports the
fastest (zxing-cpp is deterministic: the codes are the same each time)."""

import base64
import json
import os
import sys
import time

import numpy as np
import zxingcpp
from PIL import Image

REPEAT = max(1, int(os.environ.get("EVOUCHER_BENCH_REPEAT", "1")))

for line in sys.stdin:
    path = line.strip()
    if not path:
        continue
    img = np.asarray(Image.open(path).convert("L"))
    ms = float("inf")
    for _ in range(REPEAT):
        t = time.perf_counter()
        results = zxingcpp.read_barcodes(img, formats=zxingcpp.BarcodeFormat.QRCode)
        ms = min(ms, (time.perf_counter() - t) * 1000)
    codes = []
    for r in results:
        p = r.position
        cx = (p.top_left.x + p.top_right.x + p.bottom_right.x + p.bottom_left.x) / 4
        cy = (p.top_left.y + p.top_right.y + p.bottom_right.y + p.bottom_left.y) / 4
        codes.append({"text": r.text, "bytes_b64": base64.b64encode(bytes(r.bytes)).decode(), "centre": [cx, cy]})
    print(json.dumps({"file": path, "codes": codes, "ms": ms}))
