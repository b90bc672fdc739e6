"""Peer for scripts/bench-stream.sh: zxing-cpp (PyPI `zxing-cpp`) on the camera-stream frames
that `scan_stream emit` writes to standard input (a JSON header line, then stride × height
bytes of Y plane). Each frame is given to zxing-cpp as a strided view of the padded buffer
(as ours gets it) and only the read call is timed. One JSON line per frame, in the shape of
`scan_stream run`: {"decoder", "seq", "frame", "ms", "read", "wrong"}."""

import base64
import json
import sys
import time

import numpy as np
import zxingcpp

inp = sys.stdin.buffer
while True:
    head = inp.readline()
    if not head:
        break
    h = json.loads(head)
    w, hh, stride = h["width"], h["height"], h["stride"]
    buf = inp.read(stride * hh)
    img = np.frombuffer(buf, dtype=np.uint8).reshape(hh, stride)[:, :w]
    expected = base64.b64decode(h["expected_b64"])
    t = time.perf_counter()
    results = zxingcpp.read_barcodes(img, formats=zxingcpp.BarcodeFormat.QRCode)
    ms = (time.perf_counter() - t) * 1000
    got = [bytes(r.bytes) for r in results]
    print(json.dumps({"decoder": "zxing-cpp", "seq": h["seq"], "frame": h["frame"], "ms": ms,
                      "read": expected in got, "wrong": any(g != expected for g in got)}))
