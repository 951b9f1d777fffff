"""Render canonical times (float seconds, video-absolute) as text, only at export time.

The model sees one visual per sample: a clip (a clip file, a cut, or the source video restricted to
the clip interval) or a whole source video. Times are rendered relative to the start of that visual
(`origin_s`), because that is where the model's own clock starts. A time format is named by a *spec*,
`name` or `name:bins` (`lita:50`); `bins` sets the token count of the token renderers.

| spec | point | span | confirmed in |
|---|---|---|---|
| `seconds` (default) | `12.3 seconds` | `12.3 - 20.5 seconds` | |
| `timesuite` | `12.3 seconds` | `12.3 - 20.5 seconds` | OpenGVLab/TimeSuite `dataset/TimeIT/*/instruct_*.json`: answers such as "The given query happens in 0.0 - 6.9 seconds.", one decimal |
| `relative` | `12` | `12 - 40` | huangb23/VTimeLLM `vtimellm/train/dataset.py` `convert`: `min(round(100 * t / duration), 99)`, two digits 00-99; read back as NN/100 * duration |
| `frames` | `frame 75` | `frames 75 - 119` | frame indices of the visual (0 = its first frame), both ends inclusive: a moment names the frame shown then, and so does a span's start (a chapter's start is one frame in every task; loaders that floor `start * fps` open a clip on it); a span's last frame is the one before the frame shown at its end, so adjacent spans share no frame. A constant-rate video counts frames at its rate; a variable-rate one (`is_vfr`) by its real frame times (`frame_times`) |
| `lita[:T]` (T=100) | `<t12>` | `from <t12> to <t40>` | NVlabs/LITA `lita/constants.py` `TIME_TOKEN_TEMPLATE = "<t{t}>"`; `lita/dataset/temporal_reasoning_dataset.py`: k = round((T-1) * t / duration), so tokens run `<t0>`..`<t{T-1}>` (not 1..T) |
| `vtg` | `<TIME_ZERO>…<TIME_DOT><TIME_FIVE> seconds` | `A - B seconds` with A, B as tokens | gyxxyg/VTG-LLM `vtgllm/datasets/datasets/video_instruct_dataset.py` `number_to_token`: a time is 6 tokens, four integer digits (zero-padded), `<TIME_DOT>`, one decimal |
| `grounded_videollm[:N]` (N=300) | `<12>` | `from <12> to <40>` | WHB139426/Grounded-Video-LLM `datasets/mix_grounded.py` `convert_time_position`: k = min(int(N * t / duration), N), tokens `<0>`..`<N>` (`models/llava_next_video.py` adds them); the paper's `<T_k>` is written `<k>` in its code |
| `bracketed` | `<12.30>` | `from <12.30> to <40.00>` | what LITA's and Grounded-VideoLLM's *release files* store: both loaders turn `<seconds>` into their tokens with the duration and their own token count (the regexes in the two files above) |

Decimals (`seconds`, `timesuite`, `vtg`, `bracketed`) round half up on the decimal time (12.25 -> 12.3, as 15.75 ->
15.8), not half to even on the binary float. In the position formats (`relative`, `lita`, `grounded_videollm`) a
span's end index is always after its start (`span_indices`: a span inside one position would read as empty), and
their indices stay inside the model's vocabulary by construction. `vtg` writes at most 9999.9 s: a time past it
raises `SampleError` (`time_out_of_range`), which every exporter counts as a skipped sample, never a clamped time.

Canonical texts may carry times as placeholders, `{{t:12.3}}` and `{{span:12.3,20.5}}` (video-absolute
seconds); they are rendered the same way (two moments that bound an interval, "from {{t:a}} to {{t:b}}",
"between {{t:a}} and {{t:b}}", "{{t:a}} - {{t:b}}", render as that span: in `frames` b is the interval's last
frame, in the position formats b's index comes after a's). Text a sample took from its source stores a literal `{{` as
`{\\{` (`vdata.prompts.escape_placeholders`): rendering reads it back as written. Every other text is left
as it is. `parse_times` reads rendered times back (to local seconds), for checks and round trips.
"""
from __future__ import annotations

import math
import re
from bisect import bisect_right
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Sequence

from vdata.prompts import unescape_placeholders

TIME_FORMAT_NAMES = ("seconds", "relative", "frames", "lita", "vtg", "grounded_videollm", "timesuite", "bracketed")
DEFAULT_BINS = {"lita": 100, "grounded_videollm": 300}
# Formats whose numbers are positions over the visual's length: they need its duration.
RELATIVE_KINDS = ("relative", "lita", "grounded_videollm")

VTG_DIGITS = ("ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE")
VTG_DOT = "<TIME_DOT>"
VTG_MAX_S = 9999.9          # four integer digits

_PLACEHOLDER = re.compile(r"\{\{\s*(t|span)\s*:\s*([-+0-9.eE]+)\s*(?:,\s*([-+0-9.eE]+)\s*)?\}\}")
# two moments that bound an interval in a text ("between {{t:a}} and {{t:b}}", "from {{t:a}} to {{t:b}}",
# "{{t:a}} - {{t:b}}"); "at {{t:a}} and {{t:b}}" names two moments and is left to `point`
_MOMENT = r"\{\{\s*t\s*:\s*([-+0-9.eE]+)\s*\}\}"
_PAIR = re.compile(rf"(?:(?:(?<=\bfrom )|(?<=\bbetween )){_MOMENT}(\s+(?:to|and|until|through)\s+)"
                   rf"|{_MOMENT}(\s*[-–]\s*)){_MOMENT}", re.IGNORECASE)
_VTG_TOKEN = re.compile(r"<TIME_(ZERO|ONE|TWO|THREE|FOUR|FIVE|SIX|SEVEN|EIGHT|NINE|DOT)>")
OUT_OF_RANGE = "time_out_of_range"   # the skip reason of a sample with a time its export's format cannot write


class SampleError(ValueError):
    """A sample that cannot be rendered (e.g. an MCQ whose answer_index is out of range, a time past what the
    time format can write): every exporter skips it and counts `reason` (`ExportResult.skipped`)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def decimal_text(x: float, places: int) -> str:
    """`x` with `places` decimals, half up on the decimal the float stands for (12.25 -> "12.3", as 15.75 ->
    "15.8"); `f"{x:.1f}"` rounds the binary value, half to even on exact halves (12.25 -> "12.2"). The float is
    first read to the microsecond, so an origin subtracted away (12.35 - 0.1 = 12.249999999999998) reads
    as the 12.25 it stands for."""
    d = Decimal(repr(float(x))).quantize(Decimal("1e-6"), ROUND_HALF_UP)
    return format(d.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP), "f")


def parse_time_format(spec: str) -> tuple[str, int | None]:
    """`"lita:50"` -> `("lita", 50)`; `"lita"` -> `("lita", 100)`; ValueError names what is wrong."""
    name, sep, arg = str(spec).partition(":")
    if name not in TIME_FORMAT_NAMES:
        raise ValueError(f"time format must be one of {', '.join(TIME_FORMAT_NAMES)} (token formats "
                         f"take ':bins', e.g. lita:100), not {spec!r}")
    if not sep:
        return name, DEFAULT_BINS.get(name)
    if name not in DEFAULT_BINS:
        raise ValueError(f"time format {name!r} takes no bins (only {', '.join(DEFAULT_BINS)} do), not {spec!r}")
    if not arg.isdigit() or int(arg) < 2:
        raise ValueError(f"time format {spec!r}: bins must be an integer >= 2")
    return name, int(arg)


class _TimeFormatSpecs(tuple):
    """The format names; `spec in TIME_FORMATS` also accepts `name:bins` specs (`lita:100`)."""

    def __contains__(self, spec) -> bool:
        try:
            parse_time_format(spec)
        except ValueError:
            return False
        return True


TIME_FORMATS = _TimeFormatSpecs(TIME_FORMAT_NAMES)


@dataclass(frozen=True)
class TimeFormat:
    mode: str                         # a spec: seconds | relative | frames | lita[:T] | vtg | ...
    origin_s: float = 0.0
    duration_s: float | None = None   # length of the visual (needed by relative / token formats)
    fps: float | None = None          # frame rate of the visual (needed by `frames`)
    # `frames` on a variable-rate video: when each frame of the visual is shown (seconds from origin_s,
    # sorted, index 0 = the visual's first frame); the average rate would name other frames
    frame_times: Sequence[float] | None = field(default=None, compare=False, repr=False)
    kind: str = field(init=False, default="")
    bins: int | None = field(init=False, default=None)

    def __post_init__(self):
        kind, bins = parse_time_format(self.mode)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "bins", bins)
        if kind in RELATIVE_KINDS and not (self.duration_s and self.duration_s > 0):
            raise ValueError(f"{kind} times need the visual's duration (duration_s / clip interval missing)")
        if kind == "frames" and self.frame_times is None and not (self.fps and self.fps > 0):
            raise ValueError("frame-index times need the video's frame rate (fps column missing)")

    def local(self, t: float) -> float:
        """Seconds from the start of the visual, clamped into it."""
        x = float(t) - self.origin_s
        if self.duration_s:
            x = min(x, self.duration_s)
        return max(0.0, x)

    def index(self, t: float) -> int:
        """The token / position index of a time for the position formats (relative, lita, grounded_videollm)."""
        x = self.local(t) / self.duration_s
        if self.kind == "relative":   # VTimeLLM's convert: 100 positions, the end capped at 99
            return min(99, max(0, round(x * 100)))
        if self.kind == "lita":
            return min(self.bins - 1, max(0, round(x * (self.bins - 1))))
        return min(self.bins, max(0, int(self.bins * x)))     # grounded_videollm: floor, capped at N

    @property
    def top(self) -> int:
        """The last index of a position format: 99 (relative), T-1 (lita), N (grounded_videollm)."""
        return {"relative": 99, "lita": (self.bins or 2) - 1}.get(self.kind, self.bins or 1)

    def span_indices(self, start: float, end: float) -> tuple[int, int]:
        """A span's two indices in a position format, the start always before the end: a span inside one
        position (a 2-s step of a 10-min video is 0.3 % of it) would read "17 - 17", an empty span every
        scorer grades 0 even against itself. Its end moves one up, or, at the last index, its start one
        down. A span with no length in the visual (it lies outside it) keeps its collapsed form."""
        a, b = self.index(start), self.index(end)
        if b <= a and self.local(end) > self.local(start):
            a, b = (a, a + 1) if a < self.top else (self.top - 1, self.top)
        return a, b

    def index_seconds(self, i: int) -> float:
        """Where a position format's index reads back, in seconds from the start of the visual."""
        return i / (100 if self.kind == "relative" else self.top) * self.duration_s

    def grid_span(self, start: float, end: float) -> tuple[float, float]:
        """A span as this format writes it, read back to seconds from the visual's start: for the position
        formats the gold a scorer can expect (their best answer to a span is its indices); for the others
        the span itself (local seconds)."""
        if self.kind not in RELATIVE_KINDS:
            return self.local(start), self.local(end)
        a, b = self.span_indices(start, end)
        return self.index_seconds(a), self.index_seconds(b)

    def _index_text(self, i: int) -> str:
        return {"relative": f"{i:02d}", "lita": f"<t{i}>"}.get(self.kind, f"<{i}>")

    def _num(self, t: float) -> str:
        k = self.kind
        if k in ("seconds", "timesuite"):
            return decimal_text(self.local(t), 1)
        if k in RELATIVE_KINDS:
            return self._index_text(self.index(t))
        if k == "frames":
            return str(self.frame_at(t))
        if k == "bracketed":
            return f"<{decimal_text(self.local(t), 2)}>"
        return vtg_tokens(self.local(t))

    @property
    def _eps(self) -> float:
        # times are stored to about a millisecond (a cut at 9.5095 s may read 9.51): a time this close to
        # a frame's own counts as that frame's, never more than a quarter of a frame
        return min(1e-3, 0.25 / self.fps) if self.fps else 1e-3

    def _frame_count(self) -> int | None:
        if self.frame_times is not None:
            return len(self.frame_times)
        return max(1, math.ceil(self.duration_s * self.fps - 1e-6)) if self.duration_s else None

    def _clamp(self, i: int) -> int:
        n = self._frame_count()
        return max(0, min(i, n - 1) if n else i)

    def _shown(self, x: float) -> int:
        """Index of the frame shown at local time x: the last one starting at or before it (unclamped)."""
        if self.frame_times is not None:
            return bisect_right(self.frame_times, x + self._eps) - 1
        return math.floor((x + self._eps) * self.fps)

    def frame_at(self, t: float) -> int:
        """The frame of the visual shown at time t (a moment, not the end of a span)."""
        return self._clamp(self._shown(self.local(t)))

    def frame_span(self, start: float, end: float) -> tuple[int, int]:
        """First and last frame (both inclusive) of [start, end). The first is the frame shown at start, the
        frame a moment at start names too (`frame_at`: a chapter's start is one frame whether asked as a
        moment or written as its span), and the frame loaders that floor `start * fps` open a clip on
        (InternVL, VideoChat2; `Visual.loader_interval`). The last is the frame before the one shown at end,
        so a span and the next one from its end share no frame (a frame shown across the boundary is the
        later span's); a span reaching the visual's end keeps its last frame. A span shorter than that
        names the frame shown at its start."""
        x, y = self.local(start), self.local(end)
        first = self._shown(x)
        last = self._shown(y) - 1
        if self.duration_s and y >= self.duration_s - self._eps:
            last = self._frame_count() - 1
        if end <= start or last < first:
            first = last = self.frame_at(start)
        return self._clamp(first), self._clamp(last)

    def _frame_start(self, i: int) -> float:
        if self.frame_times is not None:
            n = len(self.frame_times)
            if i >= n:   # past the last frame: the end of the visual
                return float(self.duration_s if self.duration_s else self.frame_times[-1])
            return float(self.frame_times[max(0, i)])
        return i / self.fps

    def point(self, t: float) -> str:
        if self.kind in ("seconds", "timesuite", "vtg"):
            return f"{self._num(t)} seconds"
        if self.kind == "frames":
            return f"frame {self._num(t)}"
        return self._num(t)

    def _span_nums(self, start: float, end: float) -> tuple[str, str]:
        if self.kind in RELATIVE_KINDS:
            return tuple(self._index_text(i) for i in self.span_indices(start, end))
        return self._num(start), self._num(end)

    def span(self, start: float, end: float) -> str:
        if self.kind == "frames":
            return "frames {} - {}".format(*self.frame_span(start, end))
        a, b = self._span_nums(start, end)
        if self.kind in ("seconds", "timesuite", "vtg"):
            return f"{a} - {b} seconds"
        if self.kind == "relative":
            return f"{a} - {b}"
        return f"from {a} to {b}"

    def hint(self, points: bool = False) -> str:
        """How the answer should write times (appended to questions whose answers are times); `points`:
        the answer names moments ("when does the chapter start"), not spans."""
        k = self.kind
        if k in ("seconds", "timesuite"):
            return "Give times in seconds from the start of the video, as " + \
                ("'T seconds'." if points else "'start - end seconds'.")
        if k == "relative":
            return ("Give times as relative positions from 00 (start of the video) to 99 (end), as " +
                    ("'NN'." if points else "'start - end'."))
        if k == "frames":
            # a variable-rate video has no one rate: its frames are counted, not timed
            of = "of the video" if self.frame_times is not None else f"at {self.fps:g} frames per second"
            return (f"Give times as frame numbers {of}, counted from frame 0, as " +
                    ("'frame N'." if points else "'frames start - end', the end frame included."))
        if k == "lita":
            return (f"Give times as time tokens from <t0> (start of the video) to <t{self.bins - 1}> (end), as " +
                    ("'<t>'." if points else "'from <start> to <end>'."))
        if k == "grounded_videollm":
            return (f"Give times as time tokens from <0> (start of the video) to <{self.bins}> (end), as " +
                    ("'<n>'." if points else "'from <start> to <end>'."))
        if k == "bracketed":
            return "Give times in seconds from the start of the video in angle brackets, as " + \
                ("'<T>'." if points else "'from <start> to <end>'.")
        return ("Give times in seconds from the start of the video, written with time tokens (four digits, "
                "<TIME_DOT>, one decimal), as " + ("'T seconds'." if points else "'start - end seconds'."))

    def render_text(self, text: str | None) -> str:
        """Replace `{{t:..}}` / `{{span:..,..}}` placeholders, then un-escape source text's braces; other
        text unchanged."""
        if not text or "{" not in text:
            return text or ""

        def sub(m):
            a = float(m.group(2))
            if m.group(1) == "t":
                return self.point(a)
            b = float(m.group(3)) if m.group(3) is not None else a
            return self.span(a, b)

        if self.kind == "frames" or self.kind in RELATIVE_KINDS:
            # "from {{t:a}} to {{t:b}}" names an interval: b is its end, not a moment (`frames`: its last
            # frame), and in a position format its end comes after its start, as in `span`
            def pair(m):
                a, sep = (m.group(1), m.group(2)) if m.group(1) is not None else (m.group(3), m.group(4))
                a, b = float(a), float(m.group(5))
                if b <= a:
                    return m.group(0)
                if self.kind in RELATIVE_KINDS:
                    return sep.join(self._span_nums(a, b))
                first, last = self.frame_span(a, b)
                return f"frame {first}{sep}frame {last}"

            text = _PAIR.sub(pair, text)
        return unescape_placeholders(_PLACEHOLDER.sub(sub, text))

    def parse_times(self, text: str) -> list[float]:
        """Every time this format wrote into `text`, as seconds from the start of the visual (a token
        reads back as the time its bin starts at: the error is at most one bin)."""
        k = self.kind
        if k == "vtg":
            return parse_vtg_tokens(text)
        if k == "lita":
            return [int(n) / (self.bins - 1) * self.duration_s for n in re.findall(r"<t(\d+)>", text)]
        if k == "grounded_videollm":
            return [int(n) / self.bins * self.duration_s for n in re.findall(r"<(\d+)>", text)]
        if k == "bracketed":
            return [float(n) for n in re.findall(r"<(\d+(?:\.\d+)?)>", text)]
        if k == "relative":
            return [int(n) / 100 * self.duration_s for n in re.findall(r"\b(\d\d)\b", text)]
        if k == "frames":   # a span's last frame is inclusive: it reads back as where that frame ends
            out = []
            for m in re.finditer(r"\b(\d+)(?:\s*-\s*(\d+))?", text):
                out.append(self._frame_start(int(m.group(1))))
                if m.group(2) is not None:
                    out.append(self._frame_start(int(m.group(2)) + 1))
            return out
        return [float(n) for n in re.findall(r"(\d+(?:\.\d+)?)(?=\s*(?:- |seconds))", text)]


def names_points_only(answer: str | None) -> bool:
    """Whether an answer's times are all moments (`{{t:..}}`), none a span (`{{span:..}}`)."""
    found = [m.group(1) for m in _PLACEHOLDER.finditer(answer or "")]
    return bool(found) and "span" not in found


def placeholder_moments(answer: str | None) -> list[float]:
    """The video-absolute seconds of an answer's `{{t:..}}` moments, in order."""
    return [float(m.group(2)) for m in _PLACEHOLDER.finditer(answer or "") if m.group(1) == "t"]


def vtg_tokens(seconds: float) -> str:
    """VTG-LLM's digit tokens for a time: `DDDD.D`, each character one token. A time they cannot write (past
    9999.9 s: four integer digits; before 0) raises SampleError (`time_out_of_range`): the exporters skip
    and count its sample instead of writing a clamped, wrong time."""
    digits = decimal_text(seconds, 1) if seconds >= 0 else "-"
    if digits == "-" or float(digits) > VTG_MAX_S:
        raise SampleError(OUT_OF_RANGE, f"{float(seconds):.1f} s cannot be written with VTG-LLM's time tokens "
                                        f"(four integer digits: 0 - {VTG_MAX_S} s)")
    digits = digits.zfill(6)
    return "".join(VTG_DOT if c == "." else f"<TIME_{VTG_DIGITS[int(c)]}>" for c in digits)


def parse_vtg_tokens(text: str) -> list[float]:
    """Times written as runs of VTG digit tokens, back to seconds."""
    out = []
    for m in re.finditer(r"(?:<TIME_(?:ZERO|ONE|TWO|THREE|FOUR|FIVE|SIX|SEVEN|EIGHT|NINE|DOT)>)+", text):
        run = "".join("." if t == "DOT" else str(VTG_DIGITS.index(t)) for t in _VTG_TOKEN.findall(m.group(0)))
        out.append(float(run))
    return out
