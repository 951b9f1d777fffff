"""HDR video (PQ or HLG, BT.2020) to the SDR RGB that models and datasets expect.

A phone's HDR video (HLG on iPhones and many Androids, PQ on YouTube HDR and cameras) holds light levels an
8-bit BT.709 picture cannot. Converted as if it were SDR, its code values come out flat and grey: a
203-nit white (BT.2408's HDR reference white) reads as 58% in PQ, shadows lift and colours fade, so a
teacher captions a washed-out picture, a dataset stores one and the quality stage measures its contrast
and brightness wrongly. Here such a frame is decoded to 16-bit RGB, taken to display light (PQ's EOTF, or
HLG's inverse OETF and its OOTF for a 1000-nit display), scaled so reference white is SDR white, tone mapped
on the largest channel (a hue keeps its hue; highlights roll off smoothly instead of clipping), taken from
BT.2020 to BT.709 primaries, and encoded with the inverse of BT.1886's 2.4 gamma, as SDR video is shown.
PyAV's scaler (swscale) converts matrices, not transfer functions, and PyAV's ffmpeg has no zscale (which
its `tonemap` filter needs for linear input), so the curve is vdata's own: numpy and lookup tables, about
25 ms a 640x360 frame on one core, paid by HDR frames only.

The lowest floor: decoding (media) and the teachers' own frame sampling both make RGB stills.
"""
from __future__ import annotations

import functools

import numpy as np

PQ = 16    # AVCOL_TRC_SMPTE2084
HLG = 18   # AVCOL_TRC_ARIB_STD_B67
REFERENCE_WHITE_NITS = 203.0   # BT.2408: HDR graphics white, the level SDR white maps to
HLG_DISPLAY_PEAK_NITS = 1000.0
KNEE = 0.75   # SDR linear light up to which the curve is the identity
BT2020_TO_BT709 = np.array([[1.6605, -0.5876, -0.0728],
                            [-0.1246, 1.1329, -0.0083],
                            [-0.0182, -0.1006, 1.1187]], dtype=np.float32)
BT2020_LUMA = np.array([0.2627, 0.6780, 0.0593], dtype=np.float32)
BT709_LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
BT709_PRIMARIES = 1   # AVCOL_PRI_BT709
# SMPTE ST 2084 (PQ) and BT.2100 HLG constants
PQ_M1, PQ_M2 = 2610 / 16384, 2523 / 4096 * 128
PQ_C1, PQ_C2, PQ_C3 = 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
HLG_A, HLG_B, HLG_C = 0.17883277, 0.28466892, 0.55991073


def is_hdr(frame) -> bool:
    """Whether a decoded PyAV frame is tagged with an HDR transfer (PQ or HLG)."""
    return int(getattr(frame, "color_trc", 0) or 0) in (PQ, HLG)


def pq_to_nits(signal: np.ndarray) -> np.ndarray:
    """SMPTE ST 2084 EOTF: a PQ signal in [0, 1] to display light in nits (cd/m2)."""
    p = np.power(np.clip(signal, 0.0, 1.0), 1.0 / PQ_M2)
    return 10000.0 * np.power(np.maximum(p - PQ_C1, 0.0) / (PQ_C2 - PQ_C3 * p), 1.0 / PQ_M1)


def nits_to_pq(nits: np.ndarray) -> np.ndarray:
    """SMPTE ST 2084 inverse EOTF (the encoder's side: tests check the curve against it)."""
    y = np.power(np.clip(nits / 10000.0, 0.0, 1.0), PQ_M1)
    return np.power((PQ_C1 + PQ_C2 * y) / (1.0 + PQ_C3 * y), PQ_M2)


def hlg_to_scene(signal: np.ndarray) -> np.ndarray:
    """BT.2100 HLG inverse OETF: a signal in [0, 1] to normalised scene light in [0, 1]."""
    s = np.clip(signal, 0.0, 1.0)
    return np.where(s <= 0.5, s * s / 3.0, (np.exp((s - HLG_C) / HLG_A) + HLG_B) / 12.0)


def scene_to_hlg(scene: np.ndarray) -> np.ndarray:
    """BT.2100 HLG OETF (the encoder's side)."""
    e = np.clip(scene, 0.0, 1.0)
    return np.where(e <= 1 / 12, np.sqrt(3 * e), HLG_A * np.log(np.maximum(12 * e - HLG_B, 1e-12)) + HLG_C)


def roll_off(x: np.ndarray) -> np.ndarray:
    """Relative light (1.0 = SDR white) to [0, 1): the identity up to KNEE, then an exponential shoulder
    with the same slope there that approaches 1 (a 1000-nit highlight lands at 0.9999)."""
    over = np.maximum(x - KNEE, 0.0)
    return np.where(x <= KNEE, x, KNEE + (1.0 - KNEE) * (1.0 - np.exp(-over / (1.0 - KNEE))))


@functools.lru_cache(maxsize=2)
def _signal_to_relative(transfer: int) -> np.ndarray:
    """Per 16-bit code value: display light relative to reference white (PQ), or scene light (HLG, whose
    OOTF mixes the channels and so is applied after the lookup)."""
    signal = np.arange(65536, dtype=np.float64) / 65535.0
    if transfer == PQ:
        return (pq_to_nits(signal) / REFERENCE_WHITE_NITS).astype(np.float32)
    return hlg_to_scene(signal).astype(np.float32)


@functools.lru_cache(maxsize=1)
def _gamma_lut() -> np.ndarray:
    """Linear [0, 1] in 4096 steps to 8-bit BT.1886 code values (the inverse of a 2.4 gamma)."""
    return np.round(255.0 * np.power(np.linspace(0.0, 1.0, 4096), 1 / 2.4)).astype(np.uint8)


def tone_map(rgb48: np.ndarray, transfer: int, bt2020: bool = True) -> np.ndarray:
    """16-bit non-linear RGB (H x W x 3, full range; BT.2020 primaries, or BT.709 ones where `bt2020` is
    False, as some cameras write HLG) to 8-bit BT.709 SDR RGB."""
    light = _signal_to_relative(transfer)[rgb48]
    if transfer == HLG:
        # OOTF for a 1000-nit display: system gamma 1.2 on scene luminance
        luma = np.maximum(light @ (BT2020_LUMA if bt2020 else BT709_LUMA), 1e-6)[..., None]
        light *= HLG_DISPLAY_PEAK_NITS / REFERENCE_WHITE_NITS * np.power(luma, 0.2)
    peak = np.maximum(light.max(axis=-1, keepdims=True), 1e-6)
    light *= roll_off(peak) / peak
    sdr = np.clip(light @ BT2020_TO_BT709.T if bt2020 else light, 0.0, 1.0)
    return _gamma_lut()[(sdr * 4095.0 + 0.5).astype(np.int32)]


def rgb24(frame, width: int, height: int, reformatter) -> np.ndarray:
    """A decoded PyAV frame as 8-bit RGB at width x height: SDR as swscale converts it, HDR tone mapped.
    `reformatter`: the caller's kept `VideoReformatter` (its scaler set up once for all its frames)."""
    if not is_hdr(frame):
        return reformatter.reformat(frame, width, height, "rgb24").to_ndarray()
    # swscale takes the matrix (BT.2020) from the frame, and the ranges it is told: 1 limited, 2 full
    rgb48 = reformatter.reformat(frame, width, height, "rgb48le", src_color_range=int(frame.color_range or 1),
                                 dst_color_range=2).to_ndarray()
    return tone_map(rgb48, int(frame.color_trc), bt2020=int(frame.color_primaries or 0) != BT709_PRIMARIES)


__all__ = ["HLG", "PQ", "hlg_to_scene", "is_hdr", "nits_to_pq", "pq_to_nits", "rgb24", "roll_off",
           "scene_to_hlg", "tone_map"]
