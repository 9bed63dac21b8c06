"""Reading QR codes back with real decoders (zxing-cpp and OpenCV), and test images."""

from __future__ import annotations

import base64
import io
from typing import Any

import cairosvg
import cv2
import numpy as np
import zxingcpp
from PIL import Image, ImageDraw


def image_of(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def svg_to_image(svg: bytes) -> Image.Image:
    """Rasterise an SVG with cairo (CairoSVG), embedded images included."""
    return image_of(cairosvg.svg2png(bytestring=svg))


#: Every QR-family format, so a Micro QR or rMQR symbol would be found (and fail the format
#: check); linear formats are left out: zxing now and then reads a column of modules as ITF.
QR_FAMILY = (
    zxingcpp.BarcodeFormat.QRCode,
    zxingcpp.BarcodeFormat.MicroQRCode,
    zxingcpp.BarcodeFormat.RMQRCode,
)


def zxing_read(image: Image.Image) -> list[Any]:
    return list(zxingcpp.read_barcodes(np.asarray(image.convert("L")), formats=QR_FAMILY))


def opencv_read(image: Image.Image) -> str:
    """The text OpenCV's QRCodeDetector decodes.

    OpenCV 5.0's classic finder-pattern locator misses or misplaces the corners of about 3% of
    clean, synthetic symbols (which ones depends on the data, not on the rendering: a few modules
    more border flip the result either way). Then the corners come from OpenCV's other QR
    locator (QRCodeDetectorAruco); the decoding is QRCodeDetector's in both cases.
    """
    gray = np.asarray(image.convert("L"))
    detector = cv2.QRCodeDetector()
    for locate in (detector.detect, cv2.QRCodeDetectorAruco().detect):
        found, corners = locate(gray)
        if found:
            text, _ = detector.decode(gray, corners)
            if text:
                return str(text)
    return ""


def assert_scans_as(image: Image.Image, url: str, ec_level: str) -> None:
    """Both decoders read exactly ``url`` from a regular (never Micro) QR code at ``ec_level``."""
    results = zxing_read(image)
    assert [r.text for r in results] == [url]
    found = results[0]
    assert found.format == zxingcpp.BarcodeFormat.QRCode
    assert found.format != zxingcpp.BarcodeFormat.MicroQRCode
    assert found.symbology_identifier == "]Q1"  # ISO/IEC 15424: QR Code model 2
    assert found.ec_level == ec_level
    assert opencv_read(image) == url


def module_matrix(image: Image.Image, modules: int, margin: int, scale: int) -> list[list[bool]]:
    """Dark (True) or light, read at the centre of every module of the symbol."""
    gray = image.convert("L")
    half = scale // 2
    return [
        [
            gray.getpixel(((margin + col) * scale + half, (margin + row) * scale + half)) < 128  # type: ignore[operator]
            for col in range(modules)
        ]
        for row in range(modules)
    ]


def logo_png(size: tuple[int, int] = (240, 160), *, fmt: str = "PNG") -> bytes:
    """A logo: a red ellipse on transparent (PNG) or white (JPEG) ground."""
    mode = "RGBA" if fmt == "PNG" else "RGB"
    background = (0, 0, 0, 0) if fmt == "PNG" else (255, 255, 255)
    image = Image.new(mode, size, background)
    ImageDraw.Draw(image).ellipse((4, 4, size[0] - 5, size[1] - 5), fill=(200, 16, 46))
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
