"""The shots stage's detector settings, checked when the config is read: a misspelt `detector_args`
key reached PySceneDetect's constructor only when a window was decoded, so one video failed with a
TypeError (marked for retry, as if vdata had failed) while another built with the key ignored."""
from __future__ import annotations

import inspect
from typing import Any

# detector: (PySceneDetect class, the argument `threshold` sets)
DETECTORS = {
    "adaptive": ("AdaptiveDetector", "adaptive_threshold"),
    "content": ("ContentDetector", "threshold"),
    "hash": ("HashDetector", "threshold"),
    "histogram": ("HistogramDetector", "threshold"),
    "threshold": ("ThresholdDetector", "threshold"),
}
TRANSNET_ARGS = {"weights", "device", "batch"}

# (lowest, highest) a `threshold` can mean, per detector: content and pixel scores are on 0-255, the
# hash and histogram distances and TransNetV2's probability on 0-1, the adaptive ratio above 0
THRESHOLD_RANGE = {"adaptive": (0.0, None), "content": (0.0, 255.0), "threshold": (0.0, 255.0),
                   "hash": (0.0, 1.0), "histogram": (0.0, 1.0), "transnetv2": (0.0, 1.0)}


def detector_arguments(detector: str) -> set[str]:
    """The arguments `detector_args` may give `detector`."""
    if detector == "transnetv2":
        return set(TRANSNET_ARGS)
    import scenedetect.detectors as sd

    cls = getattr(sd, DETECTORS[detector][0])
    return {name for name, p in inspect.signature(cls.__init__).parameters.items()
            if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def check_detector_args(detector: str | None, args: dict[str, Any]) -> dict[str, Any]:
    if not args or detector is None:   # no detector: its own error names it
        return args
    allowed = detector_arguments(detector)
    unknown = sorted(set(args) - allowed)
    if unknown:
        raise ValueError(f"{', '.join(unknown)}: not an argument of the {detector} detector "
                         f"(allowed: {', '.join(sorted(allowed))})")
    return args


def check_threshold(detector: str | None, threshold: float | None) -> float | None:
    if threshold is None or detector not in THRESHOLD_RANGE:
        return threshold
    low, high = THRESHOLD_RANGE[detector]
    if threshold <= low or (high is not None and threshold > high):
        span = f"above {low:g}" if high is None else f"in ({low:g}, {high:g}]"
        raise ValueError(f"the {detector} detector's threshold is {span}, not {threshold:g}")
    return threshold


def check_lengths(min_len_s: float | None, max_len_s: float | None, short_shots: str | None) -> float | None:
    """`max_len_s` under `min_len_s`: every window a long shot is split into, and every shot, would be rejected
    too_short (outside check h21: a valid config, then 0 clips). With `short_shots: keep` they are kept."""
    if short_shots != "keep" and min_len_s is not None and max_len_s is not None and max_len_s < min_len_s:
        raise ValueError(f"max_len_s {max_len_s:g} is below min_len_s {min_len_s:g}: no clip could pass")
    return max_len_s
