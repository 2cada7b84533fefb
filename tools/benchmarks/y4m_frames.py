"""Reads a 16-bit monochrome Y4M run (what `fluoro synth` writes) into numpy frames, for the benchmark scripts
here and tools/training/train_device_net.py."""
import numpy as np


def read_y4m(path):
    """All frames of a Cmono12/Cmono16 Y4M file as (height, width) uint16 arrays."""
    data = path.read_bytes()
    header = data[: data.index(b"\n")].split()
    width = int(next(f for f in header if f.startswith(b"W"))[1:])
    height = int(next(f for f in header if f.startswith(b"H"))[1:])
    frames, offset = [], data.index(b"\n") + 1
    while offset < len(data):
        offset = data.index(b"\n", offset) + 1
        frames.append(np.frombuffer(data, dtype="<u2", count=width * height, offset=offset).reshape(height, width))
        offset += width * height * 2
    return frames
