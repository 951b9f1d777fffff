"""Held frames for a detector that counts frames (PySceneDetect's): a variable-rate video shows some
pictures for seconds (a screen recording's still screen, a slideshow's slides). Counted as one frame each,
a 6-s still is shorter than the detector's 15-frame minimum scene and its cuts are dropped, and the
adaptive detector, which weighs a frame against its neighbours, misses a cut next to another. The
detector instead sees each picture repeated for as long as it is shown, at the stream's usual interval
(`media.timestamps.held_step`), as it would see the same video at a constant rate; its cuts come back
as the real frames' indices."""
from __future__ import annotations


class HeldFrames:
    """Virtual frames: the detector's frame numbers, each mapped to the real frame it shows."""

    def __init__(self, step_s: float, most_copies: int, end_s: float):
        # past the detector's minimum scene and window, more copies of a still picture change nothing
        self.step_s, self.most_copies, self.end_s = step_s, most_copies, end_s
        self.real_of: list[int] = []
        self._last_t: float | None = None

    @property
    def fps(self) -> float:
        return 1.0 / self.step_s

    def frames_for(self, index: int, t: float) -> list[tuple[int, bool]]:
        """(virtual frame number, is a copy of the previous real frame) for the real frame `index` shown
        at `t`: first the copies of the previous frame for the time it was held, then this frame."""
        copies = 0 if self._last_t is None else self._copies(t)
        self._last_t = t
        out = []
        for _ in range(copies):
            out.append((len(self.real_of), True))
            self.real_of.append(index - 1)
        out.append((len(self.real_of), False))
        self.real_of.append(index)
        return out

    def last_frame_copies(self) -> list[int]:
        """Virtual frame numbers for the last picture, held until the stream ends (`end_s`): a detector
        that weighs a frame against the ones after it needs them to see the last cut."""
        if not self.real_of or self._last_t is None:
            return []
        copies = self._copies(self.end_s)
        out = list(range(len(self.real_of), len(self.real_of) + copies))
        self.real_of.extend([self.real_of[-1]] * copies)
        return out

    def _copies(self, t: float) -> int:
        """Copies of the picture shown since the last frame's time, to fill the time until `t`."""
        return min(self.most_copies, max(0, round((t - self._last_t) / self.step_s) - 1))

    def real_cuts(self, virtual_cuts: list[int], n: int) -> list[int]:
        """The real frames that open the shots the virtual cuts open."""
        return sorted(c for c in {self.real_of[v] for v in virtual_cuts if 0 <= v < len(self.real_of)} if 0 < c < n)
