"""A small QR code reader for tests: from a module matrix (read off a canvas's pixels)
to the text it encodes. Written from the QR specification (ISO/IEC 18004) without
the library that drew the code, so a test checks what a phone would read, not what
the page meant to draw. No error correction: a test's matrix is exact, and a wrong
module fails loudly (format mismatch, bad mode, or a different text).

Handles versions 1-40, every error-correction level and mask, and the numeric,
alphanumeric and byte modes (ECI and Kanji are refused)."""

from __future__ import annotations

Matrix = list[list[bool]]  # [row][column], True = dark

# Per error-correction level (format bits L=1, M=0, Q=3, H=2), index = version.
# fmt: off
ECC_PER_BLOCK = {
    1: [-1, 7, 10, 15, 20, 26, 18, 20, 24, 30, 18, 20, 24, 26, 30, 22, 24, 28, 30, 28, 28, 28, 28, 30, 30, 26, 28, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30],
    0: [-1, 10, 16, 26, 18, 24, 16, 18, 22, 22, 26, 30, 22, 22, 24, 24, 28, 28, 26, 26, 26, 26, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28],
    3: [-1, 13, 22, 18, 26, 18, 24, 18, 22, 20, 24, 28, 26, 24, 20, 30, 24, 28, 28, 26, 30, 28, 30, 30, 30, 30, 28, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30],
    2: [-1, 17, 28, 22, 16, 22, 28, 26, 26, 24, 28, 24, 28, 22, 24, 24, 30, 28, 28, 26, 28, 30, 24, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30],
}
BLOCKS = {
    1: [-1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 4, 4, 6, 6, 6, 6, 7, 8, 8, 9, 9, 10, 12, 12, 12, 13, 14, 15, 16, 17, 18, 19, 19, 20, 21, 22, 24, 25],
    0: [-1, 1, 1, 1, 2, 2, 4, 4, 4, 5, 5, 5, 8, 9, 9, 10, 10, 11, 13, 14, 16, 17, 17, 18, 20, 21, 23, 25, 26, 28, 29, 31, 33, 35, 37, 38, 40, 43, 45, 47, 49],
    3: [-1, 1, 1, 2, 2, 4, 4, 6, 6, 8, 8, 8, 10, 12, 16, 12, 17, 16, 18, 21, 20, 23, 23, 25, 27, 29, 34, 34, 35, 38, 40, 43, 45, 48, 51, 53, 56, 59, 62, 65, 68],
    2: [-1, 1, 1, 2, 4, 4, 4, 5, 6, 8, 8, 11, 11, 16, 16, 18, 16, 19, 21, 25, 25, 25, 34, 30, 32, 35, 37, 40, 42, 45, 48, 51, 54, 57, 60, 63, 66, 70, 74, 77, 81],
}
# fmt: on
MASKS = [
    lambda x, y: (x + y) % 2 == 0,
    lambda x, y: y % 2 == 0,
    lambda x, y: x % 3 == 0,
    lambda x, y: (x + y) % 3 == 0,
    lambda x, y: (x // 3 + y // 2) % 2 == 0,
    lambda x, y: x * y % 2 + x * y % 3 == 0,
    lambda x, y: (x * y % 2 + x * y % 3) % 2 == 0,
    lambda x, y: ((x + y) % 2 + x * y % 3) % 2 == 0,
]
ALPHANUMERIC = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


class QrError(ValueError):
    pass


def _format_bits(ecl: int, mask: int) -> int:
    data = ecl << 3 | mask
    rem = data
    for _ in range(10):
        rem = (rem << 1) ^ ((rem >> 9) * 0x537)
    return (data << 10 | rem) ^ 0x5412


def _alignment_positions(version: int, size: int) -> list[int]:
    if version == 1:
        return []
    count = version // 7 + 2
    step = (version * 8 + count * 3 + 5) // (count * 4 - 4) * 2
    return [6, *reversed([size - 7 - i * step for i in range(count - 1)])]


def _function_modules(version: int) -> list[list[bool]]:
    size = version * 4 + 17
    f = [[False] * size for _ in range(size)]

    def rect(top: int, left: int, height: int, width: int) -> None:
        for y in range(top, top + height):
            for x in range(left, left + width):
                f[y][x] = True

    rect(6, 0, 1, size)  # timing patterns
    rect(0, 6, size, 1)
    rect(0, 0, 9, 9)  # finders, separators, format information (and the dark module)
    rect(0, size - 8, 9, 8)
    rect(size - 8, 0, 8, 9)
    positions = _alignment_positions(version, size)
    last = len(positions) - 1
    for i, y in enumerate(positions):
        for j, x in enumerate(positions):
            if (i, j) not in ((0, 0), (0, last), (last, 0)):
                rect(y - 2, x - 2, 5, 5)
    if version >= 7:  # version information
        rect(0, size - 11, 6, 3)
        rect(size - 11, 0, 3, 6)
    return f


def _check_finders(m: Matrix) -> None:
    size = len(m)
    for top, left in ((0, 0), (0, size - 7), (size - 7, 0)):
        for y in range(7):
            for x in range(7):
                ring = max(abs(y - 3), abs(x - 3))
                if m[top + y][left + x] != (ring != 2):
                    raise QrError(f"no finder pattern at ({top}, {left})")


def decode(m: Matrix) -> str:
    """The text a QR code's module matrix encodes."""
    size = len(m)
    if size < 21 or (size - 17) % 4 or any(len(row) != size for row in m):
        raise QrError(f"not a QR code matrix: {size} x {len(m[0]) if m else 0}")
    version = (size - 17) // 4
    _check_finders(m)
    bit = [m[i][8] for i in range(6)] + [m[7][8], m[8][8], m[8][7]] + [m[8][14 - i] for i in range(9, 15)]
    read = sum(b << i for i, b in enumerate(bit))
    candidates = [(e, k) for e in range(4) for k in range(8) if _format_bits(e, k) == read]
    if not candidates:
        raise QrError("unreadable format information")
    ecl, mask = candidates[0]
    function = _function_modules(version)
    bits: list[int] = []
    right = size - 1
    while right >= 1:
        if right == 6:
            right = 5
        for vert in range(size):
            for j in range(2):
                x = right - j
                upward = ((right + 1) & 2) == 0
                y = size - 1 - vert if upward else vert
                if not function[y][x]:
                    bits.append(int(m[y][x] ^ MASKS[mask](x, y)))
        right -= 2
    raw = [sum(bits[i * 8 + j] << (7 - j) for j in range(8)) for i in range(len(bits) // 8)]
    blocks, ecc = BLOCKS[ecl][version], ECC_PER_BLOCK[ecl][version]
    short_len = len(raw) // blocks
    shorts = blocks - len(raw) % blocks
    data_len = [short_len - ecc + (0 if b < shorts else 1) for b in range(blocks)]
    data: list[list[int]] = [[] for _ in range(blocks)]
    i = 0
    for k in range(max(data_len)):
        for b in range(blocks):
            if k < data_len[b]:
                data[b].append(raw[i])
                i += 1
    stream = "".join(f"{byte:08b}" for block in data for byte in block)
    return _segments(stream, version)


def _segments(stream: str, version: int) -> str:
    pos, out = 0, []

    def take(n: int) -> int:
        nonlocal pos
        if pos + n > len(stream):
            raise QrError("the data runs past its end")
        value = int(stream[pos : pos + n], 2)
        pos += n
        return value

    band = 0 if version <= 9 else 1 if version <= 26 else 2
    while pos + 4 <= len(stream):
        mode = take(4)
        if mode == 0:
            break
        if mode == 0b0100:
            count = take((8, 16, 16)[band])
            out.append(bytes(take(8) for _ in range(count)).decode("utf-8"))
        elif mode == 0b0001:
            count = take((10, 12, 14)[band])
            digits = []
            while count >= 3:
                digits.append(f"{take(10):03d}")
                count -= 3
            if count == 2:
                digits.append(f"{take(7):02d}")
            elif count == 1:
                digits.append(str(take(4)))
            out.append("".join(digits))
        elif mode == 0b0010:
            count = take((9, 11, 13)[band])
            chars = []
            while count >= 2:
                pair = take(11)
                chars += [ALPHANUMERIC[pair // 45], ALPHANUMERIC[pair % 45]]
                count -= 2
            if count:
                chars.append(ALPHANUMERIC[take(6)])
            out.append("".join(chars))
        else:
            raise QrError(f"unsupported mode {mode:04b}")
    return "".join(out)
