"""How close `vdata plan` comes to the wall time of a build, from the rates a build measured.

Builds the curation part of the quickstart (probe, shots, quality, frames) on a few of the example
videos, then on all of them, and prints for the full build:
- its measured wall time;
- the estimate from its own rates (the planner's model of the build it measured);
- the estimate from the smaller build's rates (what a user does: build a sample, plan the rest);
- each estimate over the measured time (goal: 0.7 to 1.3).

    python bench/bench_plan.py [--sample 3] [--executor ray]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import yaml  # noqa: E402
from _common import table  # noqa: E402

VIDEOS = ROOT / "examples" / "videos"
CURATION = {"probe", "shots", "quality", "frames"}


def build_on(videos: list[Path], work: Path, executor: str) -> dict:
    """Build the quickstart's curation stages on `videos`; the manifest (wall time and rates)."""
    from vdata.pipelines.runner import build
    from vdata.schemas.config import load_config

    src = work / "in"
    src.mkdir(parents=True)
    for v in videos:
        (src / v.name).symlink_to(v)
    data = yaml.safe_load((ROOT / "examples" / "quickstart.yaml").read_text())
    data["input"] = [{"path": str(src)}]
    data["output"].update({"dir": str(work / "out"), "mode": "overwrite", "stage_cache": False})
    data["output"].pop("exports", None)
    data["stages"] = [s for s in data["stages"] if set(s) <= CURATION]
    data.pop("teachers", None)
    data.setdefault("ray", {})["executor"] = executor
    cfg = work / "config.yaml"
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    result = build(load_config(cfg), progress=False)
    manifest = json.loads((Path(result.output_dir) / "manifest.json").read_text())
    return {"config": cfg, "output": result.output_dir, "manifest": manifest}


def main() -> int:
    from vdata.pipelines.estimate import estimate, load_rates
    from vdata.pipelines.planning import make_plan
    from vdata.schemas.config import load_config

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sample", type=int, default=3, help="videos in the small build whose rates plan the full one")
    ap.add_argument("--executor", default="ray", choices=["ray", "local"])
    a = ap.parse_args()
    videos = sorted(VIDEOS.glob("*.mp4"))
    with tempfile.TemporaryDirectory() as tmp:
        small = build_on(videos[: a.sample], Path(tmp) / "small", a.executor)
        full = build_on(videos, Path(tmp) / "full", a.executor)
        cfg = load_config(full["config"])
        cpus = cfg.ray.num_cpus or os.cpu_count()
        plan = make_plan(cfg)
        measured = full["manifest"]["wall_s"]
        rows = []
        for label, output in (("its own rates", full["output"]), (f"rates of {a.sample} videos", small["output"])):
            est = estimate(plan, load_rates(output), len(videos), None, cpus, 0)
            rows.append([label, f"{measured:.1f}", f"{est.wall_s:.1f}", f"{est.wall_s / measured:.2f}", est.bottleneck])
    table(f"vdata plan vs a measured build of {len(videos)} videos ({a.executor}, {cpus} CPUs); "
          f"load {os.getloadavg()[0]:.1f}",
          ["estimate from", "measured wall s", "estimated wall s", "estimate / measured", "bottleneck"], rows)
    print("\ngoal: estimate / measured within 0.7 to 1.3")
    return 0


if __name__ == "__main__":
    sys.exit(main())
