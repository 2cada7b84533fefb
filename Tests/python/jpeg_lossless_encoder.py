"""A small, independent JPEG Lossless (process 14) encoder, written from ITU T.81 Annex H for the tests:
any predictor 1-7, precision 2-16, point transform, restart intervals. Not fast; only correct."""
import numpy as np


class BitWriter:
    def __init__(self):
        self.out = bytearray()
        self.accumulator = 0
        self.count = 0

    def write(self, value, length):
        for shift in range(length - 1, -1, -1):
            self.accumulator = (self.accumulator << 1) | ((value >> shift) & 1)
            self.count += 1
            if self.count == 8:
                self._emit(self.accumulator)
                self.accumulator, self.count = 0, 0

    def _emit(self, byte):
        self.out.append(byte)
        if byte == 0xFF:
            self.out.append(0x00)

    def flush(self):
        """Pads the last byte with 1 bits, as T.81 requires before a marker."""
        if self.count:
            self._emit(((self.accumulator << (8 - self.count)) | ((1 << (8 - self.count)) - 1)) & 0xFF)
            self.accumulator, self.count = 0, 0


def _segment(marker, payload):
    return bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload


def encode(image, precision, predictor, point_transform=0, restart_interval=0):
    """Encodes a 2-D array of unsigned samples (< 2**precision) as a JPEG Lossless codestream."""
    height, width = image.shape
    samples = (image.astype(np.int64) >> point_transform).tolist()
    # Huffman table: the 17 difference categories, all with 5-bit codes 0..16 (no all-ones code).
    counts = [0] * 16
    counts[4] = 17
    header = bytes([0xFF, 0xD8])
    header += _segment(0xC3, bytes([precision]) + height.to_bytes(2, "big") + width.to_bytes(2, "big") + bytes([1, 1, 0x11, 0]))
    header += _segment(0xC4, bytes([0x00] + counts + list(range(17))))
    if restart_interval:
        header += _segment(0xDD, restart_interval.to_bytes(2, "big"))
    header += _segment(0xDA, bytes([1, 1, 0x00, predictor, 0, point_transform]))

    writer = BitWriter()
    body = bytearray()
    default = 1 << (precision - point_transform - 1)
    index, restart_number = 0, 0
    first_line_row = 0  # the row where the current restart interval's "first line" is
    reset = True
    for y in range(height):
        for x in range(width):
            if restart_interval and index and index % restart_interval == 0:
                writer.flush()
                body += writer.out + bytes([0xFF, 0xD0 + restart_number % 8])
                writer.out = bytearray()
                restart_number += 1
                reset, first_line_row = True, y
            index += 1
            if reset:
                prediction, reset = default, False
            elif y == first_line_row:
                prediction = samples[y][x - 1]
            elif x == 0:
                prediction = samples[y - 1][0]
            else:
                a, b, c = samples[y][x - 1], samples[y - 1][x], samples[y - 1][x - 1]
                prediction = {1: a, 2: b, 3: c, 4: a + b - c, 5: a + ((b - c) >> 1), 6: b + ((a - c) >> 1),
                              7: (a + b) >> 1}[predictor]
            difference = (samples[y][x] - prediction) % 65536
            if difference >= 32768:
                difference -= 65536
            if difference == -32768:
                difference = 32768
            category = 0 if difference == 0 else int(abs(difference)).bit_length()
            writer.write(category, 5)
            if 0 < category < 16:
                writer.write(difference if difference > 0 else difference - 1 + (1 << category), category)
    writer.flush()
    body += writer.out
    return header + bytes(body) + bytes([0xFF, 0xD9])
