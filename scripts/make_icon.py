#!/usr/bin/env python3
"""Draws the app icon (icons/icon.png, 256x256 RGBA) with no dependencies: a teal tile with a
white heart and a yellow pressure trace, the same picture as icons/icon.svg."""
import math, struct, sys, zlib

N = 256
def inside_heart(x, y):
    # Classic implicit heart curve, scaled to the tile.
    u = (x - N / 2) / (N * 0.36)
    v = -(y - N * 0.52) / (N * 0.36)
    return (u * u + v * v - 1) ** 3 - u * u * v ** 3 <= 0

def on_trace(x, y):
    pts = [(0.12, 0.55), (0.35, 0.55), (0.42, 0.40), (0.48, 0.68), (0.55, 0.47), (0.60, 0.55), (0.88, 0.55)]
    for (x1, y1), (x2, y2) in zip(pts, pts[1:]):
        x1, y1, x2, y2 = x1 * N, y1 * N, x2 * N, y2 * N
        dx, dy = x2 - x1, y2 - y1
        t = max(0.0, min(1.0, ((x - x1) * dx + (y - y1) * dy) / (dx * dx + dy * dy)))
        if math.hypot(x - (x1 + t * dx), y - (y1 + t * dy)) < N * 0.022:
            return True
    return False

rows = []
for y in range(N):
    row = bytearray([0])
    for x in range(N):
        r = N * 0.19
        cx, cy = min(max(x, r), N - r), min(max(y, r), N - r)
        if math.hypot(x - cx, y - cy) > r:
            row += bytes([0, 0, 0, 0])
        elif on_trace(x, y):
            row += bytes([0xFF, 0xD1, 0x66, 0xFF])
        elif inside_heart(x, y):
            row += bytes([0xFF, 0xFF, 0xFF, 0xFF])
        else:
            row += bytes([0x0B, 0x5D, 0x7A, 0xFF])
    rows.append(bytes(row))

def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", N, N, 8, 6, 0, 0, 0)) \
    + chunk(b"IDAT", zlib.compress(b"".join(rows), 9)) + chunk(b"IEND", b"")
open(sys.argv[1] if len(sys.argv) > 1 else "icons/icon.png", "wb").write(png)
