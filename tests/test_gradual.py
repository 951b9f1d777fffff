"""The rules of the gradual-transition pass on layouts built by hand: the truth is in the numbers.
(tests/test_transitions.py runs the pass on real clips joined by ffmpeg xfade.)"""
import numpy as np

from vdata.media import gradual as G


def _layouts(values: list[float]) -> np.ndarray:
    """One 9x16 HSV layout per value: hue 0, saturation 0, brightness `value` everywhere."""
    out = np.zeros((len(values), 9, 16, 3), np.uint8)
    out[..., 2] = np.asarray(values, np.uint8)[:, None, None]
    return out


def test_crossing_puts_a_jump_at_the_jump_and_a_dissolve_at_its_middle():
    indices = np.arange(0, 40, 2)   # reference frames every second frame
    # motion drifts the picture by 2 a frame; at frame 24 it jumps by 60 (a cut between alike shots)
    drift = [100 + 2 * k for k in range(20)]
    jumped = [v + (60 if i >= 24 else 0) for v, i in zip(drift, indices)]
    jumped_layouts = _layouts(jumped)
    assert G._crossing(indices, jumped_layouts, G._steps(jumped_layouts), 0, 38, fallback=-1) == 24
    # a steady change from 40 to 230 (a dissolve): every step is small, the crossing is its middle
    dissolve = list(np.linspace(40, 230, 20))
    dissolve_layouts = _layouts(dissolve)
    centre = G._crossing(indices, dissolve_layouts, G._steps(dissolve_layouts), 0, 38, fallback=-1)
    assert 18 <= centre <= 20


def test_a_change_beside_a_fade_through_black_is_not_part_of_it():
    indices = np.arange(0, 60, 2)
    values = [200] * 5 + [200 - 20 * k for k in range(1, 6)] + [100] * 5 + [10] * 5 + [120] * 10
    layouts = _layouts(values)
    assert G.touches_black(indices, layouts, 36, 6)        # bright 100 -> black: the fade
    assert not G.touches_black(indices, layouts, 14, 6)    # 200 -> 100: a dissolve before it


def test_a_span_beside_that_holds_a_known_boundary_is_left_out():
    n, h = 200, 10
    left, right, low, high, one_sided = G._beside(n, h, [])
    assert left[100] == 80 and right[100] == 120 and low[100] == 0 and high[100] == n - 1 and not one_sided[100]
    left, right, low, high, one_sided = G._beside(n, h, [125])   # inside the right span [110, 130]
    assert left[100] == 80 and right[100] == -1 and one_sided[100]
    assert high[100] == 112 and low[100] == 0          # nearer to 100 than to 125
    left, right, _, _, one_sided = G._beside(n, h, [75, 125])     # both spans hold one: both still count
    assert left[100] == 80 and right[100] == 120 and not one_sided[100]
    left, right, _, _, one_sided = G._beside(n, h, [60])          # at the start, no span left of 15:
    assert left[15] == -1 and right[15] == 35 and one_sided[15]   # the right one judges alone
    alone = G._beside(n, h, [])[4]                                 # with no known boundary: at either end only
    assert alone[:3 * h].all() and alone[n - 3 * h:].all() and not alone[3 * h:n - 3 * h].any()


def _ramp(fast: float, slow: float, n: int = 120, until: int = 30) -> list[float]:
    """Brightness rising `fast` a frame until frame `until`, then `slow`: one shot whose motion slows."""
    return [fast * min(k, until) + slow * max(0, k - until) for k in range(n)]


def test_near_the_start_one_span_beside_needs_the_one_side_ratio():
    """Near the start only the span after a frame shows the shot's motion: one side's evidence, judged by
    `one_side_ratio` (3x) as a side left out for a known boundary is. A picture that drifts 2.4x faster in
    its first second than later (a slow gradient) is no transition; a change 4x the motion after it is."""
    n = 120
    indices = np.arange(n)
    drift = G.gradual_transitions(indices, _layouts(_ramp(3.0, 1.25)), n, 25.0)
    assert [c for c, _ in drift if c < 60] == [], drift
    change = G.gradual_transitions(indices, _layouts(_ramp(3.0, 0.6)), n, 25.0)
    assert [c for c, _ in change if 10 <= c <= 40], change


def test_a_transition_between_two_close_known_boundaries_is_found_and_found_once():
    fps, n = 25.0, 150
    indices = np.arange(n)
    # shot A (quiet) | cut at 40 | shot B, a 10-frame dissolve to C around 75 | cut at 100 | shot D
    values = np.concatenate([np.full(40, 60), np.full(30, 200), np.linspace(200, 110, 10), np.full(20, 110),
                             np.full(50, 250)])
    layouts = _layouts(list(values))
    found = G.gradual_transitions(indices, layouts, n, fps, known=[40, 100])
    dissolves = [c for c, _ in found if 55 <= c <= 90]
    assert len(dissolves) == 1 and 70 <= dissolves[0] <= 80, found
