"""Render canonical times (float seconds, video-absolute) as text, only at export time.

The model sees one visual per sample: a clip (a clip file, a cut, or the source video restricted to
the clip interval) or a whole source video. Times are rendered relative to the start of that visual
(`origin_s`), because that is where the model's own clock starts:

- `seconds` (default): "12.3 - 20.5 seconds", a point "12.3 seconds";
- `relative`: two-digit positions 00-99 over the visual's duration, "12 - 40" (VTimeLLM-style);
- `frames`: frame indices at the source frame rate, "frames 75 - 120", a point "frame 75".

Canonical texts may carry times as placeholders, `{{t:12.3}}` and `{{span:12.3,20.5}}` (video-absolute
seconds); they are rendered the same way. Every other text is left as it is.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

TIME_FORMATS = ("seconds", "relative", "frames")

_PLACEHOLDER = re.compile(r"\{\{\s*(t|span)\s*:\s*([-+0-9.eE]+)\s*(?:,\s*([-+0-9.eE]+)\s*)?\}\}")


@dataclass(frozen=True)
class TimeFormat:
    mode: str
    origin_s: float = 0.0
    duration_s: float | None = None   # length of the visual (needed by `relative`)
    fps: float | None = None          # frame rate of the visual (needed by `frames`)

    def __post_init__(self):
        if self.mode not in TIME_FORMATS:
            raise ValueError(f"time format must be one of {', '.join(TIME_FORMATS)}, not {self.mode!r}")
        if self.mode == "relative" and not (self.duration_s and self.duration_s > 0):
            raise ValueError("relative times need the visual's duration (duration_s / clip interval missing)")
        if self.mode == "frames" and not (self.fps and self.fps > 0):
            raise ValueError("frame-index times need the video's frame rate (fps column missing)")

    def local(self, t: float) -> float:
        """Seconds from the start of the visual, clamped into it."""
        x = float(t) - self.origin_s
        if self.duration_s:
            x = min(x, self.duration_s)
        return max(0.0, x)

    def _num(self, t: float) -> str:
        x = self.local(t)
        if self.mode == "seconds":
            return f"{x:.1f}"
        if self.mode == "relative":
            return f"{min(99, max(0, round(x / self.duration_s * 99))):02d}"
        return str(int(round(x * self.fps)))

    def point(self, t: float) -> str:
        if self.mode == "seconds":
            return f"{self._num(t)} seconds"
        if self.mode == "relative":
            return self._num(t)
        return f"frame {self._num(t)}"

    def span(self, start: float, end: float) -> str:
        a, b = self._num(start), self._num(end)
        if self.mode == "seconds":
            return f"{a} - {b} seconds"
        if self.mode == "relative":
            return f"{a} - {b}"
        return f"frames {a} - {b}"

    def hint(self) -> str:
        """How the answer should write times (appended to questions whose answers are times)."""
        if self.mode == "seconds":
            return "Give times in seconds from the start of the video, as 'start - end seconds'."
        if self.mode == "relative":
            return ("Give times as relative positions from 00 (start of the video) to 99 (end), "
                    "as 'start - end'.")
        return f"Give times as frame numbers at {self.fps:g} frames per second, as 'frames start - end'."

    def render_text(self, text: str | None) -> str:
        """Replace `{{t:..}}` / `{{span:..,..}}` placeholders; other text unchanged."""
        if not text or "{{" not in text:
            return text or ""

        def sub(m):
            a = float(m.group(2))
            if m.group(1) == "t":
                return self.point(a)
            b = float(m.group(3)) if m.group(3) is not None else a
            return self.span(a, b)

        return _PLACEHOLDER.sub(sub, text)
