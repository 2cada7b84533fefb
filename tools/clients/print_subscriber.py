#!/usr/bin/env python3
"""A minimal FluoroStream subscriber: prints one line per frame received (index, shape, latency, tip)."""
import argparse
import json

import numpy as np
import zmq


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("address", nargs="?", default="tcp://127.0.0.1:5555")
    parser.add_argument("--frames", type=int, default=0, help="stop after this many frames (0: run until idle)")
    parser.add_argument("--idle", type=float, default=10.0, help="stop after this many seconds without a frame")
    options = parser.parse_args()

    socket = zmq.Context().socket(zmq.SUB)
    socket.connect(options.address)
    socket.setsockopt(zmq.SUBSCRIBE, b"")
    socket.setsockopt(zmq.RCVTIMEO, int(options.idle * 1000))
    received = 0
    try:
        while options.frames == 0 or received < options.frames:
            header, payload = socket.recv_multipart()
            meta = json.loads(header)
            if meta.get("end_of_stream"):
                print(f"end of stream: {meta['frames']} frames published")
                break
            image = np.frombuffer(payload, dtype=meta["dtype"]).reshape(meta["shape"])
            received += 1
            print(f"frame {meta['frame']:5d}  {image.shape}  age at publish {meta['latency_ms']['age_at_publish']:.2f} ms"
                  f"  motion {meta['motion']['state']}  wire tip {meta['guidewire']['tip']}  roadmap {meta['roadmap']['state']}")
    except zmq.Again:
        pass
    print(f"subscriber: {received} frames from {options.address}")


if __name__ == "__main__":
    main()
