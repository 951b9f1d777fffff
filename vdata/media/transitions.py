"""Videos of shots joined by known transitions (ffmpeg `xfade`: dissolves, fades through black, wipes,
slides; `concat`: hard cuts), with the truth known by construction: the evaluation set for shot
detection on gradual transitions, small in the tests and larger in bench/bench_shots.py.
"""
from __future__ import annotations

from dataclasses import dataclass

from .ffmpeg import run_ffmpeg


@dataclass
class Shot:
    source: str            # a file path, or a lavfi source expression such as "testsrc2" (lavfi=True)
    duration_s: float
    start_s: float = 0.0
    lavfi: bool = False


@dataclass
class Join:
    kind: str              # "cut", or an xfade transition name: fade, fadeblack, wipeleft, slideup, ...
    duration_s: float = 0.0


@dataclass
class Transition:
    """The truth of one join: frames [first, last] (inclusive) are the transition; a cut has
    first == last == the first frame of the new shot."""

    kind: str
    first: int
    last: int

    @property
    def is_cut(self) -> bool:
        return self.kind == "cut"


def render_transitions(path: str, shots: list[Shot], joins: list[Join], size=(640, 360), fps: int = 25,
                       encode: tuple[str, ...] = ()) -> list[Transition]:
    """Join `shots` with `joins` (one fewer) into one H.264 mp4; the known transitions, in order."""
    assert len(joins) == len(shots) - 1, "one join between each pair of shots"
    w, h = size
    args: list[str] = []
    chains = []
    for i, shot in enumerate(shots):
        if shot.lavfi:
            sep = ":" if "=" in shot.source else "="
            args += ["-f", "lavfi", "-t", f"{shot.duration_s}", "-i", f"{shot.source}{sep}size={w}x{h}:rate={fps}"]
        else:
            args += ["-ss", f"{shot.start_s}", "-t", f"{shot.duration_s}", "-i", shot.source]
        chains.append(f"[{i}:v]scale={w}:{h},setsar=1,fps={fps},format=yuv420p,"
                      f"trim=end_frame={round(shot.duration_s * fps)},setpts=PTS-STARTPTS,settb=AVTB[s{i}]")
    truth: list[Transition] = []
    current, length = "s0", round(shots[0].duration_s * fps)   # frames of the joined video so far
    for i, join in enumerate(joins, start=1):
        out = f"j{i}"
        if join.kind == "cut":
            chains.append(f"[{current}][s{i}]concat=n=2:v=1:a=0[{out}]")
            truth.append(Transition("cut", length, length))
            length += round(shots[i].duration_s * fps)
        else:
            overlap = round(join.duration_s * fps)
            offset = length - overlap
            chains.append(f"[{current}][s{i}]xfade=transition={join.kind}:duration={overlap / fps}:"
                          f"offset={offset / fps}[{out}]")
            truth.append(Transition(join.kind, offset, offset + overlap - 1))
            length = offset + round(shots[i].duration_s * fps)
        current = out
    run_ffmpeg([*args, "-filter_complex", ";".join(chains), "-map", f"[{current}]", "-c:v", "libx264",
                "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p", "-r", str(fps), *encode, path])
    return truth


def match_transitions(found: list[int], truth: list[Transition], tolerance: int = 2) -> tuple[int, int, int]:
    """(matched, found, true): a found boundary matches an unmatched transition when it lies inside
    it, `tolerance` frames either side; each found boundary and each transition counts once."""
    used: set[int] = set()
    matched = 0
    for t in truth:
        hit = next((k for k, f in enumerate(found) if k not in used and t.first - tolerance <= f <= t.last + tolerance), None)
        if hit is not None:
            used.add(hit)
            matched += 1
    return matched, len(found), len(truth)


def f1_score(matched: int, found: int, true: int) -> float:
    p = matched / found if found else 0.0
    r = matched / true if true else 0.0
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)
